rule analyze:
    """Phase-space analysis of one run: fixed/slow points at every checkpoint, loss drop, GR events."""
    input:
        checkpoints="results/runs/{run_id}/checkpoints.pt",
        metrics="results/runs/{run_id}/metrics.tsv",
        data=dataset("test"),
        src=run_src("rnngeom.analysis.run_analysis"),
    output:
        fixed_points="results/runs/{run_id}/analysis/fixed_points.tsv",
        summary="results/runs/{run_id}/analysis/checkpoint_summary.tsv",
        gr_scores="results/runs/{run_id}/analysis/gr_scores.tsv",
        events="results/runs/{run_id}/analysis/events.tsv",
        trajectories="results/runs/{run_id}/analysis/trajectories_pca.npz",
        kappa_flow="results/runs/{run_id}/analysis/kappa_flow.tsv",
        result="results/runs/{run_id}/analysis/analysis.json",
    log:
        "results/logs/analyze/{run_id}.log",
    benchmark:
        "results/benchmarks/analyze/{run_id}.tsv"
    conda:
        "../../envs/rnngeom.yaml"
    threads: config["threads_per_job"]
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=3000,
        runtime="60m",
    params:
        settings=json.dumps(config["analysis"], sort_keys=True),
        device=DEVICE,
        out_dir=lambda wc, output: Path(output.result).parent,
    shell:
        "python -m rnngeom.analysis.run_analysis --checkpoints {input.checkpoints} --data {input.data} "
        "--metrics {input.metrics} --out-dir {params.out_dir} --settings {params.settings:q} "
        "--device {params.device} --threads {threads} > {log} 2>&1"
