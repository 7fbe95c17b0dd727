"""Snakemake script: corrupt one split with one task (thin; logic in ganrestore.pipeline)."""

from ganrestore.logs import script_logging
from ganrestore.pipeline import run_corrupt

sm = snakemake  # noqa: F821

with script_logging(sm.log[0], sm.threads):
    run_corrupt(sm.input[0], sm.wildcards.task, sm.params.image_size, sm.params.seed, sm.output[0])
