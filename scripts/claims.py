"""Snakemake script: the papers' claims, each held / not held / inconclusive / not
run in this run, from the per-image metrics.  Thin: the claims, their scope and
their statistics live in ganrestore.claims."""

from pathlib import Path

from ganrestore import claims as C
from ganrestore.logs import script_logging

sm = snakemake  # noqa: F821

with script_logging(sm.log[0], sm.threads):
    info = sm.params.info
    papers = C.read_papers(Path(sm.input.papers[0]).parent)
    run = C.Run.from_csvs(list(sm.input.csvs), pairs=[tuple(p) for p in sm.params.pairs],
                          task_info=dict(sm.params.task_info), dataset=sm.params.dataset, papers=papers,
                          profile=dict(sm.params.profile))
    rows = C.evaluate_claims(run)
    note = (f"Experiment `{info['name']}` ({info['source']} data, {info['n_test']} test images: "
            f"{C.header_n(rows, run.n_kind)}, {info['image_size']}px, seed {info['seed']}); IAGAN's claims about "
            f"its tables use its '{sm.params.dataset}' columns. The papers test on real CelebA faces, so every "
            "claim about a paper's table is tested on the real photos. PSNR: Yeh et al.'s claims use the mean of "
            "per-image PSNR, IAGAN's the PSNR of the mean MSE.")
    C.write_claims(rows, sm.output.md, sm.output.csv, sm.output.html,
                   title=f"The papers' claims: {info['name']}", note=note, n_kind=run.n_kind)
