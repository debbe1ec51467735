rule make_dataset:
    """Generate one task's train or test split once, with a checksum; every run reuses it."""
    input:
        src=lambda wc: job_source_files("rnngeom.data", task=wc.task),
    output:
        npz="results/data/{task}/{split}.npz",
        meta="results/data/{task}/{split}.json",
    log:
        "results/logs/make_dataset/{task}_{split}.log",
    benchmark:
        "results/benchmarks/make_dataset/{task}_{split}.tsv"
    conda:
        "../../envs/rnngeom.yaml"
    params:
        n_trials=lambda wc: config["data"][f"n_{wc.split}"],
        seed=config["data"]["seed"],
        task_params=lambda wc: json.dumps(config["tasks"][wc.task], sort_keys=True),
    shell:
        "python -m rnngeom.data --task {wildcards.task} --split {wildcards.split} "
        "--n-trials {params.n_trials} --seed {params.seed} --params {params.task_params:q} "
        "--out {output.npz} > {log} 2>&1"
