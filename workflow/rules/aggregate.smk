rule aggregate:
    """Tidy tables over all runs: runs, metrics (learning curves), checkpoints, fixed_points, events."""
    input:
        trained=block_manifests("train"),
        analysed=block_manifests("analysis"),
        src=job_source_files("rnngeom.aggregate"),
    output:
        **{table: f"results/tables/{table}.tsv" for table in TABLES},
    log:
        "results/logs/aggregate.log",
    benchmark:
        "results/benchmarks/aggregate.tsv"
    conda:
        "../../envs/rnngeom.yaml"
    params:
        thresholds=json.dumps(rnngeom_config.learn_criteria(config)),
        loss_drop=json.dumps(config["loss_drop"], sort_keys=True),
        run_dirs=[f"{RUNS_DIR}/{run_id}" for run_id in RUNS],
        out_dir=lambda wc, output: Path(output.runs).parent,
    shell:
        "python -m rnngeom.aggregate --thresholds {params.thresholds:q} --loss-drop {params.loss_drop:q} "
        "--out-dir {params.out_dir} "
        "{params.run_dirs} > {log} 2>&1"
