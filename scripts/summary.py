"""Snakemake script: the summary table of every configured (task, method)."""

from ganrestore.io import read_json, write_text_atomic
from ganrestore.logs import script_logging
from ganrestore.tables import kinds_note, rows_to_csv, rows_to_markdown, summary_rows, summary_wide

sm = snakemake  # noqa: F821

with script_logging(sm.log[0], sm.threads):
    aggs = [read_json(p, "metrics aggregate", "evaluate") for p in sm.input]
    rows = summary_rows(aggs, [tuple(p) for p in sm.params.pairs], [tuple(p) for p in sm.params.left_out])
    note = (f"Experiment `{sm.params.name}`, {sm.params.n_test} test images. {kinds_note(aggs, paper=False)} "
            "'faces': real = real photos, in-range = outputs of the prior (the split stores their z). PSNR in dB "
            "(data range 1); SSIM: scikit-image, Gaussian window sigma 1.5. "
            "'n/a': the method does not apply to the task; 'not run (left out by method_tasks)': "
            "it could, but the config's method_tasks leaves the task out.")
    write_text_atomic(sm.output.md, rows_to_markdown(rows, f"Summary: {sm.params.name}", note))
    write_text_atomic(sm.output.csv, rows_to_csv(*summary_wide(rows)))   # one row per (task, method)
