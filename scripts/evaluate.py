"""Snakemake script: per-image metrics of one (task, method) (thin; logic in
ganrestore.pipeline.evaluate_job; run in the local job server when there is one)."""

from ganrestore import jobserver

sm = snakemake  # noqa: F821

jobserver.run("ganrestore.pipeline:evaluate_job", dict(
    split_path=str(sm.input.data), shard_paths=[str(p) for p in sm.input.shards],
    task_name=sm.wildcards.task, method=sm.wildcards.method, out_csv=str(sm.output.csv),
    out_json=str(sm.output.json),
    lpips_weights=str(sm.input.lpips) if "lpips" in sm.input.keys() else None,
    task_options=dict(sm.params.task_options), ssim_window=sm.params.ssim_window), sm.log[0], sm.threads)
