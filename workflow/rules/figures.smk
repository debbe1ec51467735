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
    wildcard_constraints:
        figure=one_of(STATIC_FIGURES),
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


rule figure_animation:
    """A figure of plot phase_animation: the phase space at every checkpoint of one run of the experiment as
    a GIF, the same frames side by side (PNG, PDF), and a page showing the GIF in the report (which offers
    .gif files only as downloads)."""
    input:
        **{table: f"results/tables/{table}.tsv" for table in TABLES},
        trajectories=figure_trajectories,
        src=job_source_files("rnngeom.plots.phase_animation"),
    output:
        png=report(
            "results/figures/{figure}.png",
            caption="../report/figure.rst",
            category=figure_category,
            labels=animation_labels("every frame"),
        ),
        pdf="results/figures/{figure}.pdf",
        gif="results/figures/{figure}.gif",
        html=report(
            "results/figures/{figure}.html",
            caption="../report/figure.rst",
            category=figure_category,
            labels=animation_labels("animation"),
        ),
    log:
        "results/logs/figure/{figure}.log",
    benchmark:
        "results/benchmarks/figure/{figure}.tsv"
    wildcard_constraints:
        figure=one_of(ANIMATED_FIGURES),
    conda:
        "../../envs/rnngeom.yaml"
    params:
        run_ids=lambda wc: json.dumps(rnngeom_config.figure_run_ids(config, wc.figure)),
        tables=lambda wc, input: Path(input.runs).parent,
        runs_dir=RUNS_DIR,
        caption=figure_caption,
    shell:
        "python -m rnngeom.plots.phase_animation --runs {input.runs} --metrics {input.metrics} "
        "--tables {params.tables} --runs-dir {params.runs_dir} --run-ids {params.run_ids:q} "
        "--out {output.gif} {output.html} {output.png} {output.pdf} > {log} 2>&1"
