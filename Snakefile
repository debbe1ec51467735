# rnngeom: reproduce "Understanding and controlling the geometry of memory organization in RNNs"
# (arXiv 2502.07256). Default config = quick reproduction; config/paper.yaml = full scale.
#   snakemake --cores 2                                   # quick reproduction
#   snakemake --cores 2 --configfile config/paper.yaml    # full scale (cluster/GPU)
#   snakemake --report results/report.html                # figures, captions and the claim table
#   snakemake --cores 2 analyse_external --config external=FOLDER   # your own RNN (docs/own-rnn.md)
from snakemake.utils import min_version

from rnngeom.report_page import InlineImages

min_version("9.20")


# A --configfile replaces config.yaml (no merging), in the main process and in every cluster job alike
# (Snakemake 9.27 does not forward --replace-workflow-config to the jobs it submits).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


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
# after the includes: the scan validates a copy of the config at parse time.
config["report_scan_maps"] = InlineImages(f"{SCAN_DIR}/figures")


rule all:
    default_target: True
    input:
        "results/tables/runs.tsv",
        "results/claims.tsv",
        "results/tables/baselines.tsv",
        expand("results/figures/{figure}.{ext}", figure=FIGURES, ext=["png", "pdf"]),
