"""Snakemake script: restore one shard with one method (thin; logic in ganrestore.pipeline)."""

from ganrestore.logs import script_logging
from ganrestore.pipeline import run_restore

sm = snakemake  # noqa: F821

with script_logging(sm.log[0], sm.threads):
    cfg = dict(sm.params.cfg)
    named = {k: v for k, v in sm.input.items()}
    extra = {k: v for k, v in named.items() if k not in ("y", "upstream", "prior", "prior_weights")}
    if extra:
        cfg["extra_inputs"] = extra
    start, stop = sm.params.bounds
    run_restore(named["y"], sm.wildcards.task, sm.wildcards.method, cfg, sm.params.image_size,
                sm.params.seed, start, stop, sm.output[0],
                prior_path=named.get("prior"), upstream_path=named.get("upstream"),
                microbatch=sm.params.microbatch)
