"""Snakemake script: the papers' claims, each held / not held / not run in this run.
Thin: the claims and their checks live in ganrestore.claims."""

import json

from ganrestore import claims as C
from ganrestore.logs import script_logging
from ganrestore.tables import read_paper_csv

sm = snakemake  # noqa: F821

with script_logging(sm.log[0], sm.threads):
    info = sm.params.info
    aggs = [json.loads(open(p).read()) for p in sm.input.aggs]
    rows = C.evaluate_claims(aggs, pairs=[tuple(p) for p in sm.params.pairs], task_info=dict(sm.params.task_info),
                             dataset=sm.params.dataset, iagan_paper=read_paper_csv(sm.input.iagan))
    note = (f"Experiment `{info['name']}` ({info['source']} data, {info['n_test']} test images, "
            f"{info['image_size']}px, seed {info['seed']}); IAGAN's claims about its tables use its "
            f"'{sm.params.dataset}' columns. PSNR: Yeh et al.'s claims use the mean of per-image PSNR, "
            "IAGAN's the PSNR of the mean MSE.")
    C.write_claims(rows, sm.output.md, sm.output.csv, sm.output.html,
                   title=f"The papers' claims: {info['name']}", note=note)
