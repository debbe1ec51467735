rule train:
    """Train one seed block (the runs of one task x arch x learning rule x lambda_tcr x gain whose seeds fall
    in block b) in one process, as one ensemble (rnngeom.train_block): each run's files go to
    results/runs/{run_id}/, the same bits for the same block on the same machine and code path (a run's bits
    can depend on its block, which the config fixes: docs/pipeline.md); resumes if interrupted. The manifest
    comes last.
    """
    input:
        train=dataset("train"),
        test=dataset("test"),
        src=block_src("rnngeom.train_block"),
    output:
        manifest="results/runs/{block}.train.json",
    log:
        "results/logs/train/{block}.log",
    benchmark:
        "results/benchmarks/train/{block}.tsv"
    conda:
        "../../envs/rnngeom.yaml"
    threads: config["threads_per_job"]
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=2000,
        runtime="60m",
    params:
        settings=lambda wc: json.dumps(
            [rnngeom_config.run_settings(config, run) for run in block_runs(wc)],
            sort_keys=True,
        ),
        device=DEVICE,
        run_dirs=block_run_dirs,
    shell:
        "python -m rnngeom.train_block --settings {params.settings:q} --train-data {input.train} "
        "--test-data {input.test} --out-dir {params.run_dirs} --manifest {output.manifest} "
        "--device {params.device} --threads {threads} > {log} 2>&1"
