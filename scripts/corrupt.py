"""Snakemake script: corrupt one split with one task (thin; logic in
ganrestore.pipeline.run_corrupt; run in the local job server when there is one)."""

from ganrestore import jobserver

sm = snakemake  # noqa: F821

jobserver.run("ganrestore.pipeline:run_corrupt", dict(
    split_path=str(sm.input[0]), task_name=sm.wildcards.task, image_size=sm.params.image_size,
    global_seed=sm.params.seed, out_path=str(sm.output[0]), task_options=dict(sm.params.task_options)),
    sm.log[0], sm.threads)
