"""Snakemake script (rule ``cgan_training_curves``): the training curves of the cGAN
checkpoints the run uses.  Thin: logic in ganrestore.cgan.train.training_curves_job."""

from ganrestore import jobserver

sm = snakemake  # noqa: F821

jobserver.run("ganrestore.cgan.train:training_curves_job", dict(
    logs={t: str(p) for t, p in zip(sm.params.tasks, sm.input.logs)},
    metas={t: str(p) for t, p in zip(sm.params.tasks, sm.input.meta)},
    png_path=str(sm.output.png), pdf_path=str(sm.output.pdf)), sm.log[0], sm.threads)
