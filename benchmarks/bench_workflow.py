"""Where a workflow run's time went: per rule and per method, the job count, the
job-seconds (Snakemake's benchmark files), the seconds spent in the work itself
(the artifacts' sidecars: a restore's method, an evaluation, a corruption) and
the share of job time that was start-up and overhead instead.

    .venv/bin/python benchmarks/bench_workflow.py                  # results/demo
    .venv/bin/python benchmarks/bench_workflow.py --name yeh2018
    .venv/bin/python benchmarks/bench_workflow.py --imports        # also each job type's import floor

Run it after a run (e.g. ``make demo``); it only reads files.  "start-up
share" = (job-seconds - work seconds) / job-seconds over the jobs whose work is
recorded; the other rules (tables, figures, ...) are listed with their
job-seconds.  ``--imports`` measures ``python -X importtime`` of what each job
type imports, in fresh interpreters: the floor a job pays when it runs in its
own process (no job server).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: what a job of each type imports when it runs in its own process
IMPORTS = {
    "client (any job, job server up)": "import ganrestore.jobserver",
    "restore (classical)": "import ganrestore.pipeline, ganrestore.methods.classical",
    "restore (GAN)": "import ganrestore.pipeline, ganrestore.methods.gan, ganrestore.priors.checkpoint",
    "evaluate": "import ganrestore.pipeline, ganrestore.metrics, ganrestore.lpips, skimage.metrics",
    "corrupt": "import ganrestore.pipeline",
    "tables / claims": "import ganrestore.tables, ganrestore.claims",
}


def read_benchmark(path: Path) -> float:
    with open(path) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return float(rows[-1]["s"]) if rows else float("nan")


def work_seconds(res: Path, rule: str, rel: Path, shard_size: str | None) -> tuple[str, float | None]:
    """(method or '', seconds of work) of one benchmark file."""
    parts = rel.with_suffix("").parts
    if rule == "restore":                          # restore/<task>/<method>_<shard>
        task, stem = parts[1], parts[2]
        method, shard = stem.rsplit("_", 1)
        side = next(iter(sorted((res / "restore" / task / method).glob(f"s*-{shard}.npz.json"))), None)
        if side is None:
            return method, None
        return method, float(json.loads(side.read_text()).get("seconds", "nan"))
    if rule == "evaluate":                         # evaluate/<task>_<method>
        for task_dir in (res / "metrics").iterdir() if (res / "metrics").exists() else []:
            if parts[1].startswith(task_dir.name + "_"):
                method = parts[1][len(task_dir.name) + 1:]
                agg = task_dir / f"{method}.json"
                if agg.exists():
                    return method, json.loads(agg.read_text()).get("evaluate_seconds")
        return "", None
    if rule == "corrupt":                          # corrupt/<task>_<split>
        task, split = parts[1].rsplit("_", 1)
        side = res / "corrupt" / task / f"{split}.npz.json"
        return "", float(json.loads(side.read_text())["seconds"]) if side.exists() else None
    return "", None


def collect(res: Path):
    per_rule = defaultdict(lambda: [0, 0.0, 0.0, 0.0])      # jobs, job-s, work-s, job-s of jobs with work
    per_method = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for path in sorted((res / "benchmarks").rglob("*.tsv")):
        rel = path.relative_to(res / "benchmarks")
        rule = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        rule = {"classical": "learn_dictionary", "priors": "prior_samples", "report": rel.stem}.get(rule, rule)
        s = read_benchmark(path)
        method, work = work_seconds(res, rule, rel, None)
        for table, key in ((per_rule, rule), (per_method, f"{rule}:{method}" if method else None)):
            if key is None:
                continue
            row = table[key]
            row[0] += 1
            row[1] += s
            if work is not None:
                row[2] += work
                row[3] += s
    return per_rule, per_method


def print_table(title, table):
    print(f"\n{title}")
    print(f"{'':<24}{'jobs':>6}{'job-s':>10}{'work-s':>10}{'start-up':>10}")
    for key, (n, s, w, sw) in sorted(table.items(), key=lambda kv: -kv[1][1]):
        share = f"{(sw - w) / sw:9.0%}" if sw > 0 else f"{'—':>9}"
        print(f"{key:<24}{n:>6}{s:>10.1f}{(w if sw else float('nan')):>10.1f} {share}")


def import_floor(stmt: str) -> float:
    """Seconds of imports of ``stmt`` in a fresh interpreter (sum of top-level cumulative times)."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", stmt], capture_output=True, text=True,
                       cwd=ROOT)
    total = 0
    for line in r.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if m and not m.group(2).startswith(" "):
            total += int(m.group(1))
    return total / 1e6


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", default="demo", help="experiment name (results/<name>/)")
    ap.add_argument("--results", default="results")
    ap.add_argument("--imports", action="store_true", help="also measure each job type's import floor")
    a = ap.parse_args(argv)
    res = Path(a.results) / a.name
    if not (res / "benchmarks").is_dir():
        sys.exit(f"{res}/benchmarks does not exist: run the workflow first")
    per_rule, per_method = collect(res)
    jobs = sum(r[0] for r in per_rule.values())
    total = sum(r[1] for r in per_rule.values())
    known_s = sum(r[3] for r in per_rule.values())
    known_w = sum(r[2] for r in per_rule.values())
    print(f"{res}: {jobs} jobs, {total:.1f} job-seconds")
    print_table("per rule", per_rule)
    print_table("per rule and method", per_method)
    if known_s:
        print(f"\nstart-up and overhead: {(known_s - known_w):.1f} of {known_s:.1f} job-seconds "
              f"({(known_s - known_w) / known_s:.0%}) of the jobs whose work is recorded "
              f"(restore, evaluate, corrupt); {total - known_s:.1f} job-seconds in other rules")
        print(f"start-up share of all job-seconds (other rules counted as work): "
              f"{(known_s - known_w) / total:.0%}")
    if a.imports:
        print("\nimport floor per job type (python -X importtime, fresh interpreter)")
        for what, stmt in IMPORTS.items():
            print(f"  {what:<36}{import_floor(stmt):6.2f} s   ({stmt})")


if __name__ == "__main__":
    main()
