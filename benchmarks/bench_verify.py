"""What verifying artifacts costs (issue 30): the sha256 check of every read and the
fsync of every write, as ratios to the same operations without them.

Writes ``--mb`` MB artifacts (float32 noise: compresses little, so the file is
about that size) with :func:`ganrestore.io.save_artifact`, then times, best of
``--repeat``:

* ``load_artifact(verify=True)`` vs ``verify=False`` (the sha256 pass; the file is
  in the page cache either way, as it is when a job reads what the previous one
  wrote);
* ``save_artifact`` with and without the fsync of the file and its folder.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_verify.py [--mb 1 4 16] [--repeat 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from ganrestore import io


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, nargs="+", default=[1, 4, 16])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    print(f"{'MB':>6} {'file MB':>8} {'load ms':>8} {'+verify ms':>10} {'ratio':>6} {'save ms':>8} "
          f"{'no fsync ms':>11} {'ratio':>6}")
    for mb in args.mb:
        n = int(mb * 1024 * 1024 / 4)
        arrays = {"y": np.random.default_rng(0).random(n, dtype=np.float32), "ids": np.array(["a"])}
        p = d / f"a{mb}.npz"
        io.save_artifact(p, arrays, {"stage": "bench"})
        io.load_artifact(p)                                   # warm the page cache
        plain = _best(lambda: io.load_artifact(p, verify=False), args.repeat)
        checked = _best(lambda: io.load_artifact(p, verify=True), args.repeat)
        synced = _best(lambda: io.save_artifact(p, arrays, {"stage": "bench"}), args.repeat)
        real = io._fsync_path
        io._fsync_path = lambda *a, **k: None
        try:
            unsynced = _best(lambda: io.save_artifact(p, arrays, {"stage": "bench"}), args.repeat)
        finally:
            io._fsync_path = real
        print(f"{mb:6g} {p.stat().st_size / 2**20:8.2f} {plain * 1e3:8.2f} {checked * 1e3:10.2f} "
              f"{checked / plain:6.2f} {synced * 1e3:8.2f} {unsynced * 1e3:11.2f} {synced / unsynced:6.2f}")


if __name__ == "__main__":
    main()
