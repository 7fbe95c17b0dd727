"""Snakemake script: prepare the test / validation splits from a plugin's data
source (thin; logic in ganrestore.plugins.prepare_source)."""

from ganrestore.logs import script_logging
from ganrestore.plugins import prepare_source

sm = snakemake  # noqa: F821

with script_logging(sm.log[0], sm.threads):
    prepare_source(sm.params.name, dict(sm.params.cfg), sm.params.image_size,
                   sm.output.test, sm.output.val, sm.output.manifest)
