rule analyze:
    """Phase-space analysis of one seed block's runs in one process, each at its analysis level (full: fixed
    points at every checkpoint, GR noise floor and events; final: fixed points at the final checkpoint);
    loss drop and per-checkpoint slow dynamics for all. Writes results/runs/{run_id}/analysis/, then the
    manifest.
    """
    input:
        trained="results/runs/{block}.train.json",
        data=dataset("test"),
        src=block_src("rnngeom.analysis.run_analysis"),
    output:
        manifest="results/runs/{block}.analysis.json",
    log:
        "results/logs/analyze/{block}.log",
    benchmark:
        "results/benchmarks/analyze/{block}.tsv"
    conda:
        "../../envs/rnngeom.yaml"
    threads: config["threads_per_job"]
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=3000,
        runtime="60m",
    params:
        settings=lambda wc: json.dumps(
            [
                rnngeom_config.analysis_settings(config, ANALYSIS_LEVEL[run.run_id])
                for run in block_runs(wc)
            ],
            sort_keys=True,
        ),
        device=DEVICE,
        run_dirs=block_run_dirs,
    shell:
        "python -m rnngeom.analysis.run_analysis --data {input.data} --run-dir {params.run_dirs} "
        "--settings {params.settings:q} --manifest {output.manifest} "
        "--device {params.device} --threads {threads} > {log} 2>&1"
