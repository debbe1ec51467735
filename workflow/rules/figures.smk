rule figure:
    """One figure per entry of config['figures'], drawn by src/rnngeom/plots/{figure}.py."""
    input:
        runs="results/tables/runs.tsv",
        metrics="results/tables/metrics.tsv",
        src=lambda wc: SRC_CORE + src_files("plots/style.py", f"plots/{wc.figure}.py"),
    output:
        png="results/figures/{figure}.png",
        pdf="results/figures/{figure}.pdf",
    params:
        grid=lambda wc: experiment_grid_json(wc.figure),
    log:
        "results/logs/figure/{figure}.log",
    benchmark:
        "results/benchmarks/figure/{figure}.tsv"
    conda:
        "../../envs/rnngeom.yaml"
    shell:
        "python -m rnngeom.plots.{wildcards.figure} --runs {input.runs} --metrics {input.metrics} "
        "--grid {params.grid:q} --out {output.png} {output.pdf} > {log} 2>&1"
