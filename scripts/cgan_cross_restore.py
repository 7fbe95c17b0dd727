"""Snakemake script (rule ``cgan_cross_restore``): the cGAN trained on one task applied
to every task's test observations.  Thin: logic in ganrestore.cgan.cross.cross_restore
(run in the local job server when there is one)."""

from ganrestore import jobserver

sm = snakemake  # noqa: F821

jobserver.run("ganrestore.cgan.cross:cross_restore", dict(
    corrupt_paths={t: str(p) for t, p in zip(sm.params.tasks, sm.input.y)},
    checkpoint=str(sm.input.checkpoint)[: -len(".json")], trained_on=sm.wildcards.trained,
    image_size=sm.params.image_size, global_seed=sm.params.seed, out_path=str(sm.output[0]),
    microbatch=sm.params.microbatch), sm.log[0], sm.threads)
