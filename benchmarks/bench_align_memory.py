"""Peak memory and time of the folder align step on one large photograph.

The ``prepare_folder`` rule decodes each photograph, detects faces (dlib HOG)
and aligns them (:func:`ganrestore.data.folder.build_folder`).  This writes one
``side`` x ``side`` JPEG -- ``noface`` (scikit-image's coffee cup, scaled up:
the detector's worst case, every retry runs) or ``face`` (the astronaut,
scaled up) -- and runs ``build_folder`` on it in a fresh subprocess, whose
peak resident memory (``VmHWM`` of ``/proc/self/status``: counts dlib's native
allocations, unlike tracemalloc, and unlike ``ru_maxrss`` not the parent's
size at exec) and wall time are printed with the SLURM profile's ``mem_mb``
for the rule.  Linux only.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_align_memory.py [--side 6000] [--kind noface face]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
from ganrestore.data.folder import build_folder

def peak_mb():
    # VmHWM: this process's own peak resident set (ru_maxrss would also count the parent's
    # peak at exec time, which Linux carries into the child's rusage)
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024

base, t = peak_mb(), time.perf_counter()
try:
    out = build_folder({"dir": sys.argv[1], "n_test": 1}, int(sys.argv[2]), progress=False)
    faces = len(out["test"]["ids"])
except ValueError as e:  # no face: "0 faces found"
    faces = 0
print(json.dumps({"seconds": time.perf_counter() - t, "faces": faces, "peak_mb": peak_mb(),
                  "import_mb": base}))
"""


def make_photo(folder, side: int = 6000, kind: str = "noface") -> Path:
    """One ``side`` x ``side`` RGB JPEG in ``folder``: a face (astronaut) or none (coffee)."""
    import numpy as np
    from PIL import Image
    from skimage import data

    src = data.astronaut() if kind == "face" else data.coffee()
    path = Path(folder) / f"{kind}{side}.jpg"
    Path(folder).mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(src)).resize((side, side), Image.BICUBIC).save(path, quality=92)
    return path


def measure(folder, image_size: int = 64, timeout: float = 900) -> dict:
    """``build_folder`` on ``folder`` in a subprocess: ``{"peak_mb", "seconds", "faces", "import_mb"}``."""
    res = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(image_size)], cwd=ROOT,
                         capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"align child failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def rule_mem_mb(rule: str = "prepare_folder") -> int:
    """The rule's ``mem_mb`` in the SLURM profile (profiles/slurm/config.yaml, set-resources)."""
    import yaml

    cfg = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    return int(cfg["set-resources"][rule]["mem_mb"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=6000)
    ap.add_argument("--kind", nargs="+", default=["noface", "face"], choices=["noface", "face"])
    ap.add_argument("--image-size", type=int, default=64)
    args = ap.parse_args()
    limit = rule_mem_mb()
    for kind in args.kind:
        with tempfile.TemporaryDirectory() as d:
            make_photo(d, args.side, kind)
            r = measure(d, args.image_size)
        print(f"{kind:6s} {args.side}x{args.side}: peak {r['peak_mb']:.0f} MB (after imports "
              f"{r['import_mb']:.0f} MB), {r['seconds']:.1f} s, {r['faces']} face(s); "
              f"prepare_folder mem_mb {limit}")


if __name__ == "__main__":
    main()
