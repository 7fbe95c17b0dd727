"""Snakemake script: per-image metrics of one (task, method) (thin; logic in ganrestore.pipeline)."""

from ganrestore.logs import script_logging
from ganrestore.pipeline import run_evaluate

sm = snakemake  # noqa: F821

with script_logging(sm.log[0], sm.threads):
    extra = {}
    if "lpips" in sm.input.keys():  # LPIPS weights available (rules/lpips.smk)
        from ganrestore.metrics import lpips_metric

        extra["lpips"] = lpips_metric(sm.input.lpips)
    run_evaluate(sm.input.data, list(sm.input.shards), sm.wildcards.task, sm.wildcards.method,
                 sm.output.csv, sm.output.json, extra_metrics=extra)
