# Analyse your own RNN (docs/own-rnn.md): a folder with the checkpoints of a network trained elsewhere and a
# manifest, analysed with the pipeline's instruments into results/external/<name>/ (the manifest is read in
# common.smk, the captions and labels are in report.smk). Not part of `all`:
#   snakemake --cores N analyse_external --config external=FOLDER


wildcard_constraints:
    name=one_of([EXTERNAL.name] if EXTERNAL else []),
    plot=one_of(EXTERNAL_STATIC),


rule external_analysis:
    """Fixed points at every checkpoint, GR scores against the run's noise floor, GR events and the loss drop
    of a network trained elsewhere (python -m rnngeom.external): its run folder and its tables.
    """
    input:
        files=external_files,
        src=job_source_files("rnngeom.external"),
    output:
        **EXTERNAL_TABLES,
        analysis=f"{EXTERNAL_DIR}/{{name}}/analysis/analysis.json",
        trajectories=f"{EXTERNAL_DIR}/{{name}}/analysis/trajectories_pca.npz",
    log:
        f"{EXTERNAL_DIR}/{{name}}/logs/analysis.log",
    benchmark:
        f"{EXTERNAL_DIR}/{{name}}/benchmarks/analysis.tsv"
    conda:
        "../../envs/rnngeom.yaml"
    threads: config["threads_per_job"]
    resources:
        mem_mb=3000,
        runtime="60m",
    params:
        manifest=lambda wc: EXTERNAL.file,
        out_dir=lambda wc: f"{EXTERNAL_DIR}/{wc.name}",
    shell:
        "python -m rnngeom.external --manifest {params.manifest:q} --out-dir {params.out_dir} "
        "--threads {threads} > {log} 2>&1"


rule external_figure:
    """The GR timeline or the phase portraits of a network trained elsewhere (the pipeline's plot modules)."""
    input:
        **EXTERNAL_TABLES,
        trajectories=f"{EXTERNAL_DIR}/{{name}}/analysis/trajectories_pca.npz",
        src=lambda wc: job_source_files(f"rnngeom.plots.{wc.plot}"),
    output:
        png=report(
            f"{EXTERNAL_DIR}/{{name}}/figures/{{plot}}.png",
            caption="../report/figure.rst",
            category=external_category,
            labels=external_labels,
        ),
        pdf=f"{EXTERNAL_DIR}/{{name}}/figures/{{plot}}.pdf",
    log:
        f"{EXTERNAL_DIR}/{{name}}/logs/{{plot}}.log",
    benchmark:
        f"{EXTERNAL_DIR}/{{name}}/benchmarks/{{plot}}.tsv"
    conda:
        "../../envs/rnngeom.yaml"
    params:
        tables=lambda wc, input: Path(input.runs).parent,
        run_ids=lambda wc: json.dumps([wc.name]),
        runs_dir=lambda wc, input: Path(input.trajectories).parents[2],
        caption=external_caption,
    shell:
        "python -m rnngeom.plots.{wildcards.plot} --runs {input.runs} --metrics {input.metrics} "
        "--tables {params.tables} --runs-dir {params.runs_dir} --run-ids {params.run_ids:q} "
        "--out {output.png} {output.pdf} > {log} 2>&1"


rule external_animation:
    """The phase space of a network trained elsewhere at every checkpoint: GIF, frames side by side (PNG,
    PDF) and the page that shows the GIF in the report."""
    input:
        **EXTERNAL_TABLES,
        trajectories=f"{EXTERNAL_DIR}/{{name}}/analysis/trajectories_pca.npz",
        src=job_source_files("rnngeom.plots.phase_animation"),
    output:
        gif=f"{EXTERNAL_DIR}/{{name}}/figures/phase_animation.gif",
        html=report(
            f"{EXTERNAL_DIR}/{{name}}/figures/phase_animation.html",
            caption="../report/figure.rst",
            category=external_category,
            labels=lambda wc: external_labels(wc, "animation"),
        ),
        png=report(
            f"{EXTERNAL_DIR}/{{name}}/figures/phase_animation.png",
            caption="../report/figure.rst",
            category=external_category,
            labels=lambda wc: external_labels(wc, "every frame"),
        ),
        pdf=f"{EXTERNAL_DIR}/{{name}}/figures/phase_animation.pdf",
    log:
        f"{EXTERNAL_DIR}/{{name}}/logs/phase_animation.log",
    benchmark:
        f"{EXTERNAL_DIR}/{{name}}/benchmarks/phase_animation.tsv"
    conda:
        "../../envs/rnngeom.yaml"
    params:
        tables=lambda wc, input: Path(input.runs).parent,
        run_ids=lambda wc: json.dumps([wc.name]),
        runs_dir=lambda wc, input: Path(input.trajectories).parents[2],
        caption=external_caption,
    shell:
        "python -m rnngeom.plots.phase_animation --runs {input.runs} --metrics {input.metrics} "
        "--tables {params.tables} --runs-dir {params.runs_dir} --run-ids {params.run_ids:q} "
        "--out {output.gif} {output.html} {output.png} {output.pdf} > {log} 2>&1"


rule analyse_external:
    """Target: the tables, the GR timeline, the phase portraits and the animation of the network in
    --config external=FOLDER (snakemake --cores N analyse_external --config external=FOLDER).
    """
    input:
        external_targets,
