"""The workflow itself: config validation, DAG planning, and one real tiny run."""

import re

import pytest
import yaml

from workflow_helpers import copy_workflow, snakemake, write_config


@pytest.mark.parametrize("profile", [None, "profiles/slurm"], ids=["local", "slurm"])
def test_dry_run_plans_one_job_per_task_method_shard(tmp_path, profile):
    """1000 images in shards of 100: one restore job per (task, method, shard),
    locally and on the cluster profile (issue 14: fewer jobs never by merging them)."""
    wd = copy_workflow(tmp_path)
    cfg = write_config(wd, **{"data.demo.real_test": 4, "data.demo.generated_test": 996,
                               "shard_size": 100, "methods": ["input", "bicubic"]})
    extra = ["--workflow-profile", profile] if profile else []
    r = snakemake(wd, "-n", "--quiet", "rules", *extra, "--configfile", str(cfg))
    assert r.returncode == 0, r.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", r.stdout + r.stderr, re.M))
    n_restore = int(counts["restore"])
    # every task x input + every super-resolution task x bicubic, 10 shards each;
    # never more than tasks x methods x shards
    from ganrestore.tasks import make_task

    planned = yaml.safe_load(cfg.read_text())
    tasks = planned["tasks"]
    # bicubic runs on the super-resolution tasks among those method_tasks gives it
    bicubic_tasks = [t for t in (planned.get("method_tasks") or {}).get("bicubic", tasks) if t in tasks]
    n_sr = sum(make_task(t, 64).family == "sr" for t in bicubic_tasks)
    assert n_restore == (len(tasks) + n_sr) * 10
    assert n_restore <= len(tasks) * 2 * 10


@pytest.mark.parametrize("override, needle", [
    ({"shard_size": 0}, "shard_size"),
    ({"tasks": ["inpaint_left"]}, "inpaint_left"),
    ({"methods": ["no_such_method"]}, "no_such_method"),
    ({"data.demo.real_tests": 3}, "real_tests"),
    ({"image_size": 65}, "image_size"),
])
def test_bad_config_is_rejected_naming_the_key(tmp_path, override, needle):
    wd = copy_workflow(tmp_path)
    cfg = write_config(wd, **override)
    r = snakemake(wd, "-n", "--configfile", str(cfg))
    assert r.returncode != 0
    assert needle in (r.stdout + r.stderr)


@pytest.mark.slow
def test_tiny_end_to_end_run_and_rerun_is_noop(tmp_path):
    wd = copy_workflow(tmp_path)
    cfg = write_config(wd, name="tiny", shard_size=2, microbatch=2,
                        **{"data.demo.real_test": 1, "data.demo.generated_test": 2,
                           "data.demo.generated_val": 1,
                           "tasks": ["inpaint_center32", "sr4", "denoise_sigma0.1"],
                           "methods": ["input", "bicubic"]})
    r = snakemake(wd, "--cores", "2", "--configfile", str(cfg))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "total wall time" in r.stdout + r.stderr
    summary = (wd / "results/tiny/tables/summary.md").read_text()
    for task in ["inpaint_center32", "sr4", "denoise_sigma0.1"]:
        assert re.search(rf"\| {re.escape(task)} \| input \| ok \| 3 \|", summary), summary
    assert "| sr4 | bicubic | ok | 3 |" in summary
    assert "| denoise_sigma0.1 | bicubic | n/a" in summary
    # 3 images in shards of 2 -> 2 shard files per (task, method)
    assert len(list((wd / "results/tiny/restore/sr4/input").glob("s2-*.npz"))) == 2
    r2 = snakemake(wd, "--cores", "2", "--configfile", str(cfg))
    assert r2.returncode == 0
    assert "Nothing to be done" in r2.stdout + r2.stderr
    # issue 14: one method more recomputes that method's artifacts and the tables, nothing else
    r3 = snakemake(wd, "-n", "--configfile", str(cfg), "--config", "methods=['input','bicubic','tv']")
    assert r3.returncode == 0, r3.stderr[-3000:]
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:\s+\w+:.*\n)*?\s+wildcards: (.*)$", r3.stdout, re.M)
    planned = set(re.findall(r"^(?:local)?rule (\w+):", r3.stdout, re.M))
    per_image = [(rule, wc) for rule, wc in jobs if rule in ("restore", "evaluate", "corrupt")]
    assert per_image and all("method=tv" in wc for _, wc in per_image), per_image
    assert {"restore", "evaluate"} <= planned
    assert planned <= {"restore", "evaluate", "summary", "tables", "figure_qualitative", "figure_perception_distortion",
                       "figure_psnr_distributions", "figure_traces", "figure_cs_mse", "claims",
                       "effective_config", "all"}, planned


@pytest.mark.slow
def test_report_holds_every_table_figure_claims_and_config(tmp_path):
    """README's first command ends with the report (scripts/make_report.py, run by
    `make demo`); a second call leaves it alone."""
    import subprocess
    import sys

    wd = copy_workflow(tmp_path)
    cfg = write_config(wd, name="tiny", shard_size=3,
                       **{"data.demo.real_test": 1, "data.demo.generated_test": 2,
                          "data.demo.generated_val": 1, "tasks": ["sr4"], "methods": ["input", "bicubic"]})
    r = snakemake(wd, "--cores", "2", "--configfile", str(cfg))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    script = [sys.executable, str(wd / "scripts/make_report.py"), "--configfile", str(cfg)]
    r1 = subprocess.run(script, cwd=wd, capture_output=True, text=True, timeout=600)
    assert r1.returncode == 0, r1.stdout[-3000:] + r1.stderr[-3000:]
    report = wd / "results/tiny/report.html"
    text = report.read_text(errors="replace")
    for item in ["claims.html", "config.html", "results.html", "paper_yeh2018.html", "paper_iagan2.html",
                 "qualitative.png", "traces.png", "psnr_distributions.png", "perception_distortion.png"]:
        assert item in text, item
    mtime = report.stat().st_mtime_ns
    r2 = subprocess.run(script, cwd=wd, capture_output=True, text=True, timeout=600)
    assert r2.returncode == 0 and "up to date" in r2.stdout
    assert report.stat().st_mtime_ns == mtime
    assert not list((wd / "results/tiny").glob(".report*"))


@pytest.mark.slow
def test_changing_the_shard_size_changes_no_image_result(tmp_path, monkeypatch):
    """Issues 12 and 26: the same images restored in shards of 2 and of 4, in
    index-aligned blocks of 2 (microbatch: 2), give bitwise the same per-image
    PSNR, for the GAN methods that once depended on their batch-mates.  The
    second run also goes without the job server (issue 14): each job in its own
    process."""
    import csv

    wd = copy_workflow(tmp_path)
    cfg = write_config(wd, name="shards", shard_size=2, microbatch=2,
                       **{"data.demo.real_test": 1, "data.demo.generated_test": 3,
                          "data.demo.generated_val": 1, "tasks": ["sr4"],
                          "methods": ["input", "csgm", "iagan"],
                          "method_params.csgm": {"iterations": 6, "restarts": 2},
                          "method_params.iagan": {"iterations": 6}})
    targets = [f"results/shards/metrics/sr4/{m}.csv" for m in ("input", "csgm", "iagan")]

    def psnrs():
        out = {}
        for t in targets:
            with open(wd / t) as f:
                out.update({(row["method"], row["image_id"]): float(row["psnr"]) for row in csv.DictReader(f)})
        return out

    r = snakemake(wd, *targets, "--cores", "2", "--configfile", str(cfg))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    two = psnrs()
    monkeypatch.setenv("GANRESTORE_NO_JOBSERVER", "1")
    r = snakemake(wd, *targets, "--cores", "2", "--configfile", str(cfg), "--config", "shard_size=4")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    four = psnrs()
    assert set(two) == set(four) and len(two) == 12
    assert two == four, max(abs(two[k] - four[k]) for k in two)
    assert len(list((wd / "results/shards/restore/sr4/iagan").glob("s4-*.npz"))) == 1
    # a shard size that is not a multiple of the block is refused before any job, naming both keys
    r = snakemake(wd, "-n", "--configfile", str(cfg), "--config", "shard_size=3")
    assert r.returncode != 0 and "shard_size" in r.stderr and "microbatch" in r.stderr, r.stderr[-2000:]


def test_method_tasks_restricts_a_method_and_what_builds_on_it(tmp_path):
    """method_tasks: yeh only on sr4 -> no yeh / yeh_blend jobs on the other
    tasks, the tables say n/a there; other methods untouched."""
    wd = copy_workflow(tmp_path)
    cfg = write_config(wd, **{"tasks": ["sr4", "denoise_sigma0.1"], "methods": ["input", "yeh", "yeh_blend"],
                              "method_tasks": {"yeh": ["sr4"]}})
    r = snakemake(wd, "-n", "--configfile", str(cfg))
    assert r.returncode == 0, r.stderr[-3000:]
    planned = re.findall(r"^\s+wildcards: (.*)$", r.stdout, re.M)
    restores = [w for w in planned if "method=" in w and "shard=" in w]
    assert any("task=sr4, method=yeh," in w for w in restores)
    assert any("task=sr4, method=yeh_blend," in w for w in restores)
    assert not any("task=denoise_sigma0.1, method=yeh" in w for w in restores), restores
    assert any("task=denoise_sigma0.1, method=input," in w for w in restores)
