"""Train a DCGAN prior (G + D) and write a prior checkpoint.

Snakemake (rule ``train_gan``): ``params.training`` is the config's
``prior.training`` dict, ``params.stem`` the checkpoint stem, ``params.out_dir``
the training folder; ``log`` receives the progress output.

Command line (what a checkpoint's provenance ``regenerate`` field records)::

    python scripts/train_gan.py --out results/priors_train/demo_teacher_d64 \
        --checkpoint ganrestore/priors/checkpoints/demo_teacher_d64 --init-g teacher --freeze-g true ...
"""


import argparse
import dataclasses
import json
import logging
import typing

from ganrestore.priors.train import TrainConfig, train_gan


def _bool(s: str) -> bool:
    if s.lower() in ("true", "1", "yes"):
        return True
    if s.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {s!r}")


def _parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="training folder (logs, grids, resume state)")
    p.add_argument("--checkpoint", default=None, help="checkpoint stem (default <out>/prior)")
    p.add_argument("--device", default=None)
    p.add_argument("--no-resume", action="store_true")
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        t = hints[f.name]
        conv = {bool: _bool, int: int, float: float, str: str}.get(t)
        if conv is None:  # Optional[...]
            conv = float if "float" in str(t) else int
        p.add_argument(f"--{f.name.replace('_', '-')}", type=conv, default=f.default)
    a = p.parse_args(argv)
    cfg = TrainConfig(**{f.name: getattr(a, f.name) for f in dataclasses.fields(TrainConfig)})
    return a, cfg


def main(argv=None) -> None:
    a, cfg = _parse(argv)
    s = train_gan(cfg, a.out, checkpoint=a.checkpoint, device=a.device, resume=not a.no_resume)
    print(json.dumps(s, indent=2))


def snakemake_main(sm) -> None:
    tr = dict(sm.params.training)
    cfg = TrainConfig.from_dict({k: v for k, v in tr.items() if v is not None})
    if cfg.threads is None:
        cfg = dataclasses.replace(cfg, threads=sm.threads)
    from ganrestore.logs import script_logging

    with script_logging(sm.log[0] if len(sm.log) else None, cfg.threads):
        s = train_gan(cfg, sm.params.out_dir, checkpoint=sm.params.stem)
        logging.getLogger("ganrestore").info("train_gan summary: %s", json.dumps(s))


if "snakemake" in globals():
    snakemake_main(snakemake)  # noqa: F821
elif __name__ == "__main__":
    main()
