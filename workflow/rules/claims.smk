rule claims:
    """The claim table: one row per claim C1-C11 with a statistic, an effect with a bootstrap CI, a p-value
    and a verdict (rules fixed in src/rnngeom/claims/); claims whose experiment is not run say so.
    """
    input:
        **{table: f"results/tables/{table}.tsv" for table in TABLES},
        src=job_source_files("rnngeom.claims"),
    output:
        tsv=report(
            "results/claims.tsv",
            caption="../report/claims.rst",
            category="Claim table",
        ),
        md="results/claims.md",
    log:
        "results/logs/claims.log",
    benchmark:
        "results/benchmarks/claims.tsv"
    conda:
        "../../envs/rnngeom.yaml"
    params:
        claims=json.dumps(config["claims"], sort_keys=True),
        experiments=json.dumps(rnngeom_config.claim_experiments(config), sort_keys=True),
        tables=lambda wc, input: Path(input.runs).parent,
    shell:
        "python -m rnngeom.claims --tables {params.tables} --claims {params.claims:q} "
        "--experiments {params.experiments:q} --out {output.tsv} --markdown {output.md} > {log} 2>&1"
