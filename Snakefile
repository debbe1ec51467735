# rnngeom: reproduce "Understanding and controlling the geometry of memory organization in RNNs"
# (arXiv 2502.07256). Default config = quick reproduction; config/paper.yaml = full scale.
#   snakemake --cores 2                                   # quick reproduction
#   snakemake --cores 2 --configfile config/paper.yaml    # full scale (cluster/GPU)
#   snakemake --report results/report.html                # figures, captions and the claim table
#   snakemake --cores 2 analyse_external --config external=FOLDER   # your own RNN (docs/own-rnn.md)
from snakemake.utils import min_version, update_config

min_version("9.20")


# A --configfile is an overlay: merged onto config.yaml, it holds only what it changes (mappings merge key by
# key, anything else is replaced). A file that says `standalone: true` is a whole config instead
# (tests/configs/tiny.yaml): config.yaml is left out, in the main process and in every cluster job alike.
configfile: "config.yaml"


if config.get("standalone"):
    config.clear()
    update_config(config, workflow.config_settings.overwrite_config)


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/claims.smk"
include: "workflow/rules/baselines.smk"
include: "workflow/rules/scan.smk"
include: "workflow/rules/external.smk"


# The report's front page (workflow/report/workflow.rst) shows the regime scan's maps where a scan was run: the
# scan is not part of `all`, so they reach the page through the config (read when the page is rendered). Set
# after the includes: the scan validates a copy of the config at parse time (and common.smk puts src/ on the path).
from rnngeom.report_page import InlineImages

config["report_scan_maps"] = InlineImages(f"{SCAN_DIR}/figures")


rule all:
    default_target: True
    input:
        "results/tables/runs.tsv",
        "results/claims.tsv",
        "results/tables/baselines.tsv",
        expand("results/figures/{figure}.{ext}", figure=FIGURES, ext=["png", "pdf"]),
