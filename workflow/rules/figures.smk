rule figure:
    """One figure per entry of config['figures']: src/rnngeom/plots/<plot>.py drawing one experiment."""
    input:
        **{table: f"results/tables/{table}.tsv" for table in TABLES},
        trajectories=figure_trajectories,
        src=lambda wc: SRC_CORE
        + src_files(
            "config.py", "plots/style.py", f"plots/{plot_module(wc.figure)}.py"
        ),
    output:
        png=report(
            "results/figures/{figure}.png",
            caption="../report/figure.rst",
            category=figure_category,
            labels=figure_labels,
        ),
        pdf="results/figures/{figure}.pdf",
    log:
        "results/logs/figure/{figure}.log",
    benchmark:
        "results/benchmarks/figure/{figure}.tsv"
    conda:
        "../../envs/rnngeom.yaml"
    params:
        grid=lambda wc: experiment_grid_json(wc.figure),
        plot=lambda wc: plot_module(wc.figure),
        caption=figure_caption,
    shell:
        "python -m rnngeom.plots.{params.plot} --runs {input.runs} --metrics {input.metrics} "
        "--tables results/tables --runs-dir results/runs --grid {params.grid:q} "
        "--out {output.png} {output.pdf} > {log} 2>&1"
