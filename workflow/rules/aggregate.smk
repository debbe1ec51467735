rule aggregate:
    """One row per run (results/tables/runs.tsv) and every run's learning curve (results/tables/metrics.tsv)."""
    input:
        metrics=run_files("metrics.tsv"),
        provenance=run_files("provenance.json"),
        src=SRC_CORE + src_files("aggregate.py"),
    output:
        runs="results/tables/runs.tsv",
        metrics="results/tables/metrics.tsv",
    params:
        thresholds=accuracy_thresholds_json(),
    log:
        "results/logs/aggregate.log",
    benchmark:
        "results/benchmarks/aggregate.tsv"
    conda:
        "../../envs/rnngeom.yaml"
    shell:
        "python -m rnngeom.aggregate --thresholds {params.thresholds:q} --out-runs {output.runs} "
        "--out-metrics {output.metrics} {input.metrics} > {log} 2>&1"
