"""Snakemake script: the experiment's effective configuration (its config file
plus the schema's defaults, nothing else) as YAML, and as HTML for the report."""

import html

import yaml

from ganrestore.io import write_text_atomic
from ganrestore.logs import script_logging

sm = snakemake  # noqa: F821

with script_logging(sm.log[0]):
    cfg = sm.params.config
    head = (f"# Effective configuration of experiment '{cfg['name']}': {sm.params.source},\n"
            "# plus the defaults of config/schema.yaml and any --config overrides; nothing else.\n")
    text = yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None, width=100)
    write_text_atomic(sm.output.yaml, head + text)
    write_text_atomic(sm.output.html, (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Configuration</title></head><body>"
        f"<h1>Effective configuration: {html.escape(cfg['name'])}</h1>"
        f"<p>{html.escape(sm.params.source)}, plus the schema's defaults (config/schema.yaml).</p>"
        f"<pre>{html.escape(text)}</pre></body></html>\n"))
