# Regime scan (docs/scan.md): time-to-learn, the search phase and the drop over gain x lambda_TCR and the
# values each family varies, on exploration seeds. Not part of `all`: run it with `snakemake scan` (make scan).
from rnngeom import scan as rnngeom_scan
from rnngeom import scan_table as rnngeom_scan_table

SCAN_FILE = config.get("scan", "config/scan.yaml")
# The scan file is validated at every parse, but a problem in it stops only the scan targets (before any of
# their jobs runs), not the reproduction, whose config may lack what the scan needs (e.g. an architecture).
try:
    SCAN = rnngeom_scan.read_scan(SCAN_FILE, config)
    SCAN_CELLS = {cell.cell_id: cell for cell in rnngeom_scan.cells(SCAN, config)}
    SCAN_ERROR = None
except rnngeom_scan.ScanError as err:
    SCAN, SCAN_CELLS, SCAN_ERROR = {"families": {}}, {}, str(err)
# {family: the table columns it varies, comma-separated (n_steps,lr, ...), "" for gain x lambda only}
SCAN_FAMILIES = {
    family: ",".join(
        rnngeom_scan.override_column(path) for path in spec.get("vary", {})
    )
    for family, spec in SCAN["families"].items()
}
SCAN_DIR = "results/scan"


wildcard_constraints:
    cell="[a-z0-9_]+/[a-z_]+/[a-z0-9]+/[a-z0-9_]+/([^/]+/)*lam[^/]+/g[^/]+",
    family="|".join(SCAN_FAMILIES),


rule scan_cell:
    """Train one scan cell (all exploration seeds as one ensemble); their learning curves. Resumes if
    interrupted."""
    input:
        # not the scan file itself: adding a family must not retrain the other cells (params say what a cell
        # trains: its runs' resolved settings, data and task parameters)
        src=lambda wc: job_source_files(
            "rnngeom.scan", *rnngeom_scan.cell_of(SCAN_CELLS, wc.cell).job_choice()
        ),
    output:
        curves=f"{SCAN_DIR}/cells/{{cell}}.tsv",
    log:
        f"{SCAN_DIR}/logs/cells/{{cell}}.log",
    benchmark:
        f"{SCAN_DIR}/benchmarks/cells/{{cell}}.tsv"
    conda:
        "../../envs/rnngeom.yaml"
    threads: 1
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=2000,
        runtime="60m",
    params:
        resolved=lambda wc: json.dumps(
            rnngeom_scan.resolved_cell(
                config, rnngeom_scan.cell_of(SCAN_CELLS, wc.cell)
            ),
            sort_keys=True,
        ),
        runs_dir=f"{SCAN_DIR}/runs",
        device=DEVICE,
    shell:
        "python -m rnngeom.scan cell --resolved {params.resolved:q} --cell {wildcards.cell} "
        "--out {output.curves} --runs-dir {params.runs_dir} --device {params.device} "
        "--threads {threads} > {log} 2>&1"


rule scan_table:
    """The scan table: one row per run of every cell (times and the loss drop, from the curves)."""
    input:
        # a problem in the scan file stops the scan here, before any of its jobs runs
        cells=lambda wc: rnngeom_scan.unless_invalid(
            SCAN_ERROR, expand(f"{SCAN_DIR}/cells/{{cell}}.tsv", cell=SCAN_CELLS)
        ),
        src=job_source_files("rnngeom.scan_table"),
    output:
        table=f"{SCAN_DIR}/scan.tsv",
    log:
        f"{SCAN_DIR}/logs/scan_table.log",
    conda:
        "../../envs/rnngeom.yaml"
    params:
        # what the table reads of the main config: thresholds and the loss-drop settings
        main=json.dumps(rnngeom_scan_table.table_config(config), sort_keys=True),
    shell:
        "python -m rnngeom.scan_table --main-config {params.main:q} --out {output.table} "
        "{input.cells} > {log} 2>&1"


rule scan_figure:
    """One map per scan family: gain x lambda (or gain x the varied value) of time-to-learn, TCR's effect
    and plateau-then-drop."""
    input:
        table=f"{SCAN_DIR}/scan.tsv",
        src=job_source_files("rnngeom.plots.scan_maps"),
    output:
        png=f"{SCAN_DIR}/figures/{{family}}.png",
        pdf=f"{SCAN_DIR}/figures/{{family}}.pdf",
    log:
        f"{SCAN_DIR}/logs/figures/{{family}}.log",
    conda:
        "../../envs/rnngeom.yaml"
    params:
        vary=lambda wc: SCAN_FAMILIES[wc.family],
    shell:
        "python -m rnngeom.plots.scan_maps --table {input.table} --family {wildcards.family} "
        "--vary={params.vary:q} --out {output.png} {output.pdf} > {log} 2>&1"


rule scan:
    """Target: the scan table and every scan figure."""
    input:
        f"{SCAN_DIR}/scan.tsv",
        expand(
            f"{SCAN_DIR}/figures/{{family}}.{{ext}}",
            family=SCAN_FAMILIES,
            ext=["png", "pdf"],
        ),
