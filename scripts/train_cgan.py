"""Train the conditional GAN of one task (seed 004) and write its checkpoint.

Snakemake (rule ``train_cgan``): ``params.training`` is the config's
``cgan.training`` dict with the task filled in, ``params.stem`` the checkpoint
stem, ``params.out_dir`` the training folder; ``log`` receives the progress.

Command line (what a checkpoint's provenance ``regenerate`` field records)::

    python scripts/train_cgan.py --out results/cgan_train/demo_sr4 \\
        --checkpoint ganrestore/cgan/checkpoints/demo_cgan_sr4 --task sr4 --steps 2000 ...
"""

import argparse
import dataclasses
import json
import logging
import typing

from ganrestore.cgan.train import CGANTrainConfig, train_cgan


def _parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="training folder (logs, grids, resume state)")
    p.add_argument("--checkpoint", default=None, help="checkpoint stem (default <out>/cgan)")
    p.add_argument("--device", default=None)
    p.add_argument("--no-resume", action="store_true")
    hints = typing.get_type_hints(CGANTrainConfig)
    for f in dataclasses.fields(CGANTrainConfig):
        t = hints[f.name]
        conv = {int: int, float: float, str: str}.get(t)
        if conv is None:  # Optional[...]
            conv = float if "float" in str(t) else int if "int" in str(t) else str
        p.add_argument(f"--{f.name.replace('_', '-')}", type=conv, default=f.default)
    a = p.parse_args(argv)
    cfg = CGANTrainConfig(**{f.name: getattr(a, f.name) for f in dataclasses.fields(CGANTrainConfig)})
    return a, cfg


def main(argv=None) -> None:
    a, cfg = _parse(argv)
    s = train_cgan(cfg, a.out, checkpoint=a.checkpoint, device=a.device, resume=not a.no_resume)
    print(json.dumps(s, indent=2))


def snakemake_main(sm) -> None:
    tr = dict(sm.params.training)
    cfg = CGANTrainConfig.from_dict({k: v for k, v in tr.items() if v is not None})
    if cfg.threads is None:
        cfg = dataclasses.replace(cfg, threads=sm.threads)
    from ganrestore.logs import script_logging

    with script_logging(sm.log[0] if len(sm.log) else None, cfg.threads):
        s = train_cgan(cfg, sm.params.out_dir, checkpoint=sm.params.stem)
        logging.getLogger("ganrestore").info("train_cgan summary: %s", json.dumps(s))


if "snakemake" in globals():
    snakemake_main(snakemake)  # noqa: F821
elif __name__ == "__main__":
    main()
