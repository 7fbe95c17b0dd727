"""The fidelity audit's tables (issue 25) on the demo faces: the sensitivity table of
the unstated choices and IAGAN Table 1's naive-IFFT readings (ganrestore.fidelity).

    .venv/bin/python scripts/fidelity_tables.py --out results/demo/tables/sensitivity

writes ``<out>.csv`` and ``<out>.md``: every row of
``ganrestore.fidelity.sensitivity_rows`` on the demo's 16 test faces at 64 px
(build_demo: 12 real, 4 generated, generated_seed 1234), then the Fourier readings
on its 12 real faces at 128 px.  Offline, about a minute on one CPU thread.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch

from ganrestore.data.demo import build_demo
from ganrestore.fidelity import fourier_reading_rows, sensitivity_markdown, sensitivity_rows
from ganrestore.io import atomic_path

DEMO = {"real_test": 12, "generated_test": 4, "generated_val": 0, "generated_seed": 1234}


def faces(size: int) -> torch.Tensor:
    cfg = dict(DEMO) if size == 64 else {**DEMO, "generated_test": 0}
    imgs = build_demo(cfg, image_size=size)["test"]["images"]
    return torch.from_numpy(np.ascontiguousarray(imgs.transpose(0, 3, 1, 2))).float() / 255.0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output stem (.csv and .md are added)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = sensitivity_rows(faces(64))
    for r in fourier_reading_rows(faces(128)):
        rows.append({"choice": r["choice"], "alternative": r["alternative"], "default": r["alternative"] == "adjoint",
                     "task": r["task"] + "_noise0.0392", "image_size": 128,
                     "what": "naive IFFT PSNR (dB), mean over 3 masks", "value": r["value"],
                     "rise_db": r["rise_db"], "kept_fraction": r["kept_fraction"]})
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with atomic_path(out.with_suffix(".csv")) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    md = sensitivity_markdown(rows)
    with atomic_path(out.with_suffix(".md")) as tmp:
        Path(tmp).write_text(md)
    print(md)


if __name__ == "__main__":
    main()
