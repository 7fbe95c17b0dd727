"""Write ``results/<name>/report.html`` (Snakemake's report: every table and
figure with its caption) when it is missing or older than a result, so that
``make demo`` ends with the report and a second ``make demo`` changes nothing.

    .venv/bin/python scripts/make_report.py                       # the demo
    .venv/bin/python scripts/make_report.py --configfile config/yeh2018.yaml
    .venv/bin/python scripts/make_report.py --force               # rewrite anyway

The report is written to a temporary file and renamed, so an interrupted run
never leaves a half-written report.html.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"logs", "benchmarks"}


def newest_result(folder: Path, report: Path) -> float:
    """Latest modification time of the experiment's outputs (logs and benchmarks excluded)."""
    newest = 0.0
    for dirpath, dirnames, filenames in os.walk(folder):
        if Path(dirpath) == folder:
            dirnames[:] = [d for d in dirnames if d not in SKIP]
        for f in filenames:
            p = Path(dirpath) / f
            if p != report and not f.startswith("."):
                newest = max(newest, p.stat().st_mtime)
    return newest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configfile", help="the experiment's config (default: the demo, config/config.yaml)")
    ap.add_argument("--force", action="store_true", help="rewrite the report even if it is up to date")
    a = ap.parse_args(argv)
    cfg_path = Path(a.configfile) if a.configfile else Path("config/config.yaml")
    name = (yaml.safe_load(cfg_path.read_text()) or {}).get("name", "demo")
    folder = Path("results") / name
    report = folder / "report.html"
    if not folder.is_dir():
        sys.exit(f"make_report: {folder}/ does not exist: run the workflow first")
    if not a.force and report.exists() and report.stat().st_mtime >= newest_result(folder, report):
        print(f"make_report: {report} is up to date")
        return 0
    tmp = folder / ".report.partial.html"
    cmd = [str(Path(sys.executable).with_name("snakemake")), "--report", str(tmp)]
    if a.configfile:
        cmd += ["--configfile", a.configfile]
    print("make_report:", " ".join(cmd), flush=True)
    try:
        subprocess.run(cmd, check=True)
        os.replace(tmp, report)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"make_report: wrote {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
