rule train:
    """Train one run (task x arch x learning rule x lambda_tcr x gain x seed); resumes if interrupted."""
    input:
        train=dataset("train"),
        test=dataset("test"),
        src=run_src("rnngeom.train"),
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
        settings=lambda wc: json.dumps(
            rnngeom_config.run_settings(config, run_of(wc)), sort_keys=True
        ),
        device=DEVICE,
        out_dir=lambda wc, output: Path(output.checkpoints).parent,
    shell:
        "python -m rnngeom.train --settings {params.settings:q} --train-data {input.train} "
        "--test-data {input.test} --out-dir {params.out_dir} --device {params.device} "
        "--threads {threads} > {log} 2>&1"
