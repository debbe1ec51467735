rule train:
    """Train one run (task x arch x learning rule x lambda_tcr x gain x seed); resumes if interrupted."""
    input:
        train=dataset("train"),
        test=dataset("test"),
        src=train_src,
    output:
        checkpoints="results/runs/{run_id}/checkpoints.pt",
        metrics="results/runs/{run_id}/metrics.tsv",
        provenance="results/runs/{run_id}/provenance.json",
    log:
        "results/logs/train/{run_id}.log",
    benchmark:
        "results/benchmarks/train/{run_id}.tsv"
    conda:
        "../../envs/rnngeom.yaml"
    threads: config["threads_per_job"]
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=2000,
        runtime="60m",
    params:
        settings=train_settings_json,
        device=config["device"],
        out_dir=lambda wc: f"results/runs/{wc.run_id}",
    shell:
        "python -m rnngeom.train --settings {params.settings:q} --train-data {input.train} "
        "--test-data {input.test} --out-dir {params.out_dir} --device {params.device} "
        "--threads {threads} > {log} 2>&1"
