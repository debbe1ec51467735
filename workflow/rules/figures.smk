rule figure:
    """One figure per entry of config['figures']: src/rnngeom/plots/<plot>.py drawing one experiment."""
    input:
        **{table: f"results/tables/{table}.tsv" for table in TABLES},
        trajectories=figure_trajectories,
        src=lambda wc: job_source_files(f"rnngeom.plots.{plot_module(wc.figure)}"),
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
        run_ids=lambda wc: json.dumps(rnngeom_config.figure_run_ids(config, wc.figure)),
        tables=lambda wc, input: Path(input.runs).parent,
        runs_dir=RUNS_DIR,
        plot=lambda wc: plot_module(wc.figure),
        caption=figure_caption,
    shell:
        "python -m rnngeom.plots.{params.plot} --runs {input.runs} --metrics {input.metrics} "
        "--tables {params.tables} --runs-dir {params.runs_dir} --run-ids {params.run_ids:q} "
        "--out {output.png} {output.pdf} > {log} 2>&1"
