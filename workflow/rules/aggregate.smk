rule aggregate:
    """Tidy tables over all runs: runs, metrics (learning curves), checkpoints, fixed_points, events."""
    input:
        metrics=run_files("metrics.tsv"),
        provenance=run_files("provenance.json"),
        analysis=run_files("analysis/analysis.json"),
        src=SRC_CORE + src_files("aggregate.py", "analysis/loss_drop.py"),
    output:
        **{table: f"results/tables/{table}.tsv" for table in TABLES},
    log:
        "results/logs/aggregate.log",
    benchmark:
        "results/benchmarks/aggregate.tsv"
    conda:
        "../../envs/rnngeom.yaml"
    params:
        thresholds=accuracy_thresholds_json(),
        run_dirs=lambda wc, input: [str(Path(f).parent) for f in input.metrics],
    shell:
        "python -m rnngeom.aggregate --thresholds {params.thresholds:q} --out-dir results/tables "
        "{params.run_dirs} > {log} 2>&1"
