# Categories, labels and captions of the HTML report (snakemake --report).


def figure_experiments(figure):
    return rnngeom_config.as_list(config["figures"][figure]["experiment"])


def figure_runs(figure):
    return [RUNS[run_id] for run_id in rnngeom_config.figure_run_ids(config, figure)]


def figure_claims(figure):
    """Claim ids whose row in the claim table points at this figure."""
    ids = [c for c, spec in config["claims"].items() if spec["figure"] == figure]
    return sorted(ids, key=lambda c: int(c[1:]))


def claim_label(claim):
    """A claim id as the report's menu shows it, zero-padded (C01 ... C11): the menu sorts its categories
    as text, which put C10 and C11 before C2."""
    return f"C{int(claim[1:]):02d}"


def figure_category(wildcards):
    claims = figure_claims(wildcards.figure)
    return (
        "Claims " + ", ".join(map(claim_label, claims)) if claims else "Other figures"
    )


def figure_labels(wildcards):
    runs = figure_runs(wildcards.figure)

    def values(key):
        return ", ".join(
            rnngeom_config.fmt_num(v) if isinstance(v, float) else str(v)
            for v in sorted({getattr(r, key) for r in runs})
        )

    return {
        "figure": wildcards.figure,
        "experiment": ", ".join(figure_experiments(wildcards.figure)),
        "task": values("task"),
        "architecture": values("arch"),
        "learning rule": values("learning_rule"),
        "λTCR": values("lambda_tcr"),
        "gain": values("gain"),
        "seeds": values("seed"),
    }


def animation_labels(view):
    """figure_labels with the view (the animation's page, or its frames side by side) in the figure's name:
    the report shows one row per set of labels, so the two entries need different ones.
    """

    def labels(wildcards):
        return {**figure_labels(wildcards), "figure": f"{wildcards.figure} ({view})"}

    return labels


def figure_caption(wildcards):
    """The plot's caption (workflow/report/plots/<plot>.rst) plus which claims and experiments it shows."""
    text = (
        Path(workflow.basedir)
        / "workflow/report/plots"
        / f"{plot_module(wildcards.figure)}.rst"
    ).read_text()
    claims = figure_claims(wildcards.figure)
    tested = (
        f"Tests claim(s) {', '.join(claims)} (see the claim table)."
        if claims
        else "Context figure."
    )
    exps = ", ".join(figure_experiments(wildcards.figure))
    n_runs = len(figure_runs(wildcards.figure))
    return f"{text.strip()}\n\n{tested} Experiment(s): {exps}; {n_runs} runs."


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
