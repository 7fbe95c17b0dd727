"""Snakemake script: restore one shard with one method (thin; logic in
ganrestore.pipeline.run_restore; run in the local job server when there is one,
see ganrestore.jobserver)."""

from ganrestore import jobserver

sm = snakemake  # noqa: F821

cfg = dict(sm.params.cfg)
named = {k: str(v) for k, v in sm.input.items()}
extra = {k: v for k, v in named.items() if k not in ("y", "upstream", "prior", "prior_weights")}
if extra:
    cfg["extra_inputs"] = extra
start, stop = sm.params.bounds
jobserver.run("ganrestore.pipeline:run_restore", dict(
    corrupt_path=named["y"], task_name=sm.wildcards.task, method=sm.wildcards.method, cfg=cfg,
    image_size=sm.params.image_size, global_seed=sm.params.seed, start=start, stop=stop,
    out_path=str(sm.output[0]), prior_path=named.get("prior"), upstream_path=named.get("upstream"),
    microbatch=sm.params.microbatch, task_options=dict(sm.params.task_options)), sm.log[0], sm.threads)
