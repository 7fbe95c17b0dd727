"""The workflow itself: config validation, DAG planning, and one real tiny run."""

import re

import pytest

from workflow_helpers import copy_workflow, snakemake, write_config


def test_dry_run_plans_one_job_per_task_method_shard(tmp_path):
    wd = copy_workflow(tmp_path)
    cfg = write_config(wd, **{"data.demo.real_test": 4, "data.demo.generated_test": 996,
                               "shard_size": 100, "methods": ["input", "bicubic"]})
    r = snakemake(wd, "-n", "--quiet", "rules", "--configfile", str(cfg))
    assert r.returncode == 0, r.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", r.stdout + r.stderr, re.M))
    n_restore = int(counts["restore"])
    # 5 tasks x input + sr4 x bicubic, 10 shards each; never more than 5 x 2 x 10
    assert n_restore == (5 + 1) * 10
    assert n_restore <= 5 * 2 * 10


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
    cfg = write_config(wd, name="tiny", shard_size=2,
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
