rule baselines:
    """Shortcut baselines of every task (chance, zero output, forgetting memories) next to its threshold."""
    input:
        data=expand(
            "results/data/{task}/{split}.npz",
            task=sorted(config["tasks"]),
            split=["train", "test"],
        ),
        src=job_source_files("rnngeom.tasks.baselines"),
    output:
        "results/tables/baselines.tsv",
    log:
        "results/logs/baselines.log",
    benchmark:
        "results/benchmarks/baselines.tsv"
    conda:
        "../../envs/rnngeom.yaml"
    params:
        tasks=json.dumps(config["tasks"], sort_keys=True),
        thresholds=json.dumps(rnngeom_config.learn_criteria(config)),
        data_dir=lambda wc, input: Path(input.data[0]).parents[1],
    shell:
        "python -m rnngeom.tasks.baselines --tasks {params.tasks:q} --data-dir {params.data_dir} "
        "--thresholds {params.thresholds:q} --out {output} > {log} 2>&1"
