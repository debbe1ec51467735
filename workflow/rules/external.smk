# Analyse your own RNN (docs/own-rnn.md): a folder with the checkpoints of a network trained elsewhere and a
# manifest (workflow/schemas/external.schema.yaml), analysed with the pipeline's instruments into
# results/external/<name>/. Not part of `all`:
#   snakemake --cores N analyse_external --config external=FOLDER
from rnngeom import external_manifest as rnngeom_external

EXTERNAL_DIR = "results/external"
# The manifest is read and checked at every parse where `external` is set: a bad one stops here, before any
# job, in one line naming the file and the key. Whether every checkpoint loads into the model (keys, shapes)
# needs torch: the analysis job's input function checks it when the job is planned, still before any job.
EXTERNAL = None
if config.get("external"):
    try:
        EXTERNAL = rnngeom_external.read_manifest(config["external"])
    except rnngeom_external.ManifestError as err:
        raise WorkflowError(str(err)) from None
EXTERNAL_STATIC = ["gr_timeline", "phase_portraits"]
EXTERNAL_TABLES = {
    table: f"{EXTERNAL_DIR}/{{name}}/tables/{table}.tsv" for table in TABLES
}


wildcard_constraints:
    name=one_of([EXTERNAL.name] if EXTERNAL else []),
    plot=one_of(EXTERNAL_STATIC),


def external_files(wildcards):
    """Input function: the folder's files, once each checkpoint is known to load into the manifest's model
    (rnngeom.external.check_manifest_models; imports torch, so only where this job is planned).
    """
    from rnngeom.external import check_manifest_models

    try:
        check_manifest_models(EXTERNAL)
    except rnngeom_external.ManifestError as err:
        raise WorkflowError(str(err)) from None
    return EXTERNAL.files


def external_targets(wildcards):
    """The target's files; without --config external=FOLDER, an error naming that key."""
    if EXTERNAL is None:
        raise WorkflowError(
            "analyse_external needs the folder to analyse: --config external=FOLDER "
            "(a folder with manifest.yaml; docs/own-rnn.md)"
        )
    figures = f"{EXTERNAL_DIR}/{EXTERNAL.name}/figures"
    return [
        *(t.format(name=EXTERNAL.name) for t in EXTERNAL_TABLES.values()),
        *(
            f"{figures}/{plot}.{ext}"
            for plot in EXTERNAL_STATIC
            for ext in ("png", "pdf")
        ),
        *(f"{figures}/phase_animation.{ext}" for ext in ("gif", "html", "png", "pdf")),
    ]


def external_category(wildcards):
    return f"External network: {wildcards.name}"


def external_labels(wildcards, view=None):
    model = EXTERNAL.model
    size = (
        model["spec"]["n_hidden"]
        if model["kind"] == "rnngeom"
        else model["hidden_size"]
    )
    return {
        "figure": wildcards.get("plot", f"phase_animation ({view})"),
        "network": wildcards.name,
        "model": f"{model['kind']}, {size} units",
        "task": EXTERNAL.task or "-",
        "checkpoints": str(len(EXTERNAL.checkpoints)),
    }


def external_caption(wildcards):
    plot = wildcards.get("plot", "phase_animation")
    text = (
        Path(workflow.basedir) / "workflow/report/plots" / f"{plot}.rst"
    ).read_text()
    return (
        f"{text.strip()}\n\nA network trained elsewhere: {wildcards.name} "
        f"({external_labels(wildcards)['model']}), {len(EXTERNAL.checkpoints)} checkpoints, "
        f"read from {EXTERNAL.file}."
    )


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
        runs_dir=EXTERNAL_DIR,
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
        runs_dir=EXTERNAL_DIR,
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
