rule claims:
    """The claim table: one row per claim C1-C11 with a statistic, an effect with a bootstrap CI, a p-value
    and a verdict (rules fixed in src/rnngeom/claims.py); claims whose experiment is not run say so.
    """
    input:
        **{table: f"results/tables/{table}.tsv" for table in TABLES},
        src=SRC_CORE + src_files("config.py", "claims.py"),
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
        claims=claims_json(),
        grids=claims_grids_json(),
    shell:
        "python -m rnngeom.claims --tables results/tables --claims {params.claims:q} "
        "--experiments {params.grids:q} --out {output.tsv} --markdown {output.md} > {log} 2>&1"
