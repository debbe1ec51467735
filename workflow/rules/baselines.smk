rule baselines:
    """Shortcut baselines of every task (chance, zero output, forgetting memories) next to its threshold."""
    input:
        data=expand(
            "results/data/{task}/{split}.npz", task=sorted(config["tasks"]), split=["train", "test"]
        ),
        src=SRC_DATA,
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
        thresholds=accuracy_thresholds_json(),
    shell:
        "python -m rnngeom.tasks.baselines --tasks {params.tasks:q} --data-dir results/data "
        "--thresholds {params.thresholds:q} --out {output} > {log} 2>&1"
