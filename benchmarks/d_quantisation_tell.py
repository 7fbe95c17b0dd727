"""Does a D trained against the frozen teacher learn 8-bit quantisation?  (A measurement
behind a design decision of ``train_gan``, not a speed benchmark.)

With ``freeze_g`` G(z) is the teacher's float output.  If the "real" faces are
the same teacher's faces rounded to 8 bits (how ``teacher_pool`` stores them,
and how any dataset is stored), real and fake differ by the rounding alone,
and the only thing D can learn is to detect it -- a difference that means
nothing for Yeh et al.'s prior term.  This trains two discriminators with
``train_gan`` for the same steps and seed, D = the DCGAN-64 at ``--ndf``:

``u8_vs_float``
    real = fresh teacher faces rounded to 8 bits, fake = float G(z): the
    combination ``TrainConfig`` refuses (set here past the check, for the
    measurement only);
``float_vs_float``
    real = fresh float teacher faces, fake = float G(z) (``teacher_u8: false``:
    the committed ``demo_teacher_d64``'s recipe), the same distribution;

and reports for each :func:`ganrestore.priors.separation.discriminator_separation`
(the quantisation AUC: 8-bit G(z) against the same G(z) unrounded; held-out
teacher faces against G(z)) and the last training-log rows.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/d_quantisation_tell.py --steps 300 \
        --out results/priors_train/quantisation_tell [--ndf 64]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch

from ganrestore.io import write_json_atomic
from ganrestore.priors import load_prior
from ganrestore.priors.separation import discriminator_separation
from ganrestore.priors.train import TrainConfig, teacher_faces_u8, train_gan


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--ndf", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-check", type=int, default=256)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    out_dir = Path(a.out)
    base = dict(steps=a.steps, batch_size=a.batch_size, ngf=64, ndf=a.ndf, seed=a.seed, init_g="teacher",
                freeze_g=True, teacher_pool=0, teacher_u8=False, sample_every=0, checkpoint_every=100,
                log_every=10, threads=1)
    held_out = teacher_faces_u8(a.n_check, seed=4321)
    report = {"steps": a.steps, "ndf": a.ndf, "batch_size": a.batch_size, "seed": a.seed, "runs": {}}
    for name in ("u8_vs_float", "float_vs_float"):
        run = out_dir / name
        if name == "u8_vs_float":
            # the measured pitfall: TrainConfig refuses it, so its check is switched off for this run
            check = TrainConfig._check_objective
            TrainConfig._check_objective = lambda self: None
            try:
                s = train_gan(TrainConfig(**dict(base, teacher_u8=True)), run, device="cpu", progress=False)
            finally:
                TrainConfig._check_objective = check
        else:
            s = train_gan(TrainConfig(**base), run, device="cpu", progress=False)
        P = load_prior(run / "prior", device="cpu")
        sep = discriminator_separation(P.D, P.G, held_out, None, n_fake=a.n_check, seed=4322)
        rows = list(csv.DictReader(open(run / "losses.csv")))
        report["runs"][name] = {"separation": sep, "last_log": rows[-1], "train_seconds": s["loop_seconds"]}
        print(name, json.dumps({"auc": {k: sep[k].get("auc") for k in ("quantisation", "teacher")},
                                "rounding_paired_mean_diff": sep["quantisation"]["paired_mean_diff"]}), flush=True)
    write_json_atomic(out_dir / "report.json", report)
    return report


if __name__ == "__main__":
    main()
