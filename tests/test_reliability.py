"""Reliability: what the workflow does under bad input and faults.

- bad configs (unknown names, wrong types, negative sizes, missing files,
  unknown keys at every level) are rejected before any job runs, with a
  message naming the offending key;
- a run killed with SIGKILL mid-way, then rerun, finishes without recomputing
  the shards that were complete and without reading a partial artifact;
- two runs with the same seed give bitwise-identical corruption artifacts and
  identical tables (CPU);
- an undecodable image in a folder dataset stops preparation with an error
  naming the file (``on_error: raise``) or is skipped with a logged warning
  (``on_error: skip``).
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from workflow_helpers import (ROOT, copy_workflow, dry_run_many, make_config, set_key, snakemake,
                              snakemake_popen, tiny_config, write_config)

SCHEMA = yaml.safe_load((ROOT / "config/schema.yaml").read_text())


def _has_key(dotted: str) -> bool:
    node = SCHEMA
    for part in dotted.split("."):
        node = (node.get("properties") or {}).get(part)
        if node is None:
            return False
    return True


# -- 1. bad configs ------------------------------------------------------------------

def _cfg(**overrides):
    return make_config(**overrides)


def _without(dotted):
    cfg = make_config()
    *path, last = dotted.split(".")
    node = cfg
    for p in path:
        node = node[p]
    node.pop(last, None)
    return cfg


MISSING = "/nonexistent/ganrestore-test/nothing-here"

# id -> (config, words the error message must contain)
BAD_CONFIGS = {
    # unknown names
    "unknown task": (_cfg(tasks=["sr4", "deblur_magic7"]), ["tasks", "deblur_magic7"]),
    "unknown task family for the size": (_cfg(tasks=["inpaint_center100"]), ["inpaint_center100"]),
    "unknown method": (_cfg(methods=["input", "csgm2"]), ["methods", "csgm2"]),
    "unknown data source": (_cfg(**{"data.source": "imagenet"}), ["source", "imagenet"]),
    "unknown folder on_error": (_cfg(**{"data.folder.on_error": "ignore"}), ["on_error", "ignore"]),
    "unknown celeba protocol": (_cfg(**{"data.celeba.protocol": "dcgan65"}), ["protocol", "dcgan65"]),
    # unknown keys at every level
    "unknown top-level key": (_cfg(shard_sizes=4), ["shard_sizes"]),
    "unknown key in data": (_cfg(**{"data.sources": "demo"}), ["sources"]),
    "unknown key in data.demo": (_cfg(**{"data.demo.generated_tests": 3}), ["generated_tests"]),
    "unknown key in data.folder": (_cfg(**{"data.folder.on_errors": "skip"}), ["on_errors"]),
    "unknown key in data.celeba": (_cfg(**{"data.celeba.protocl": "dcgan64"}), ["protocl"]),
    "unknown key in data.celebahq": (_cfg(**{"data.celebahq.resampling": "box"}), ["resampling"]),
    "unknown method under method_params": (_cfg(**{"method_params.bicubics": {}}), ["bicubics"]),
    "unknown key in method_params.input": (_cfg(**{"method_params.input.iterations": 3}), ["iterations"]),
    # the library's named profiles would be silently overridden by the schema's
    # defaults, so the workflow refuses the key (write the values instead)
    "library profile in method_params.yeh": (_cfg(**{"method_params.yeh.profile": "demo"}), ["profile"]),
    # wrong types
    "seed is a string": (_cfg(seed="zero"), ["seed", "zero"]),
    "shard_size is a float": (_cfg(shard_size=2.5), ["shard_size"]),
    "tasks is a string": (_cfg(tasks="sr4"), ["tasks"]),
    "methods holds a number": (_cfg(methods=["input", 7]), ["methods"]),
    "real_test is a string": (_cfg(**{"data.demo.real_test": "4"}), ["real_test"]),
    "folder.recursive is a string": (_cfg(**{"data.folder.recursive": "yes"}), ["recursive"]),
    "data is a list": (_cfg(data=["demo"]), ["data"]),
    "name has a slash": (_cfg(name="../elsewhere"), ["name"]),
    # negative or empty sizes
    "negative seed": (_cfg(seed=-1), ["seed"]),
    "negative shard_size": (_cfg(shard_size=-5), ["shard_size"]),
    "negative generated_test": (_cfg(**{"data.demo.generated_test": -2}), ["generated_test"]),
    "negative celeba n_val": (_cfg(**{"data.celeba.n_val": -1}), ["n_val"]),
    "zero folder n_test": (_cfg(**{"data.folder.n_test": 0}), ["n_test"]),
    "image_size 32": (_cfg(image_size=32), ["image_size"]),
    "no tasks": (_cfg(tasks=[]), ["tasks"]),
    "a task twice": (_cfg(tasks=["sr4", "sr4"]), ["tasks"]),
    "no test images": (_cfg(**{"data.demo.real_test": 0, "data.demo.generated_test": 0}), ["data"]),
    "sr factor 0": (_cfg(tasks=["sr0"]), ["sr0"]),
    "bad md5": (_cfg(**{"data.celeba.md5": {"img_align_celeba.zip": "xyz"}}), ["md5"]),
    # a method whose upstream is not configured
    "upstream method missing": (_cfg(methods=["input", "csgm_bp"]), ["csgm_bp", "csgm"]),
    # missing files
    "folder dir missing": (_cfg(**{"data.source": "folder", "data.folder.dir": MISSING,
                                   "data.folder.n_test": 2}), ["data.folder.dir", MISSING]),
    "folder dir not set": (_cfg(**{"data.source": "folder", "data.folder.n_test": 2}), ["data.folder.dir"]),
    "celebahq dir missing": (_cfg(**{"data.source": "celebahq", "data.celebahq.dir": MISSING}),
                             ["data.celebahq", MISSING]),
    # issue 13: names that are not one safe path component, or collide with shared folders
    "name ..": (_cfg(name=".."), ["name", "'..'"]),
    "name .": (_cfg(name="."), ["name", "'.'"]),
    "name .hidden": (_cfg(name=".hidden"), ["name"]),
    "name cache": (_cfg(name="cache"), ["name", "reserved"]),
    "name downloads": (_cfg(name="downloads"), ["name", "reserved"]),
    # integers that are floats (JSON Schema counts 2.0 as an integer)
    "shard_size 2.0": (_cfg(shard_size=2.0), ["shard_size", "2.0", "not an integer"]),
    "generated_test 2.0": (_cfg(**{"data.demo.generated_test": 2.0}), ["data.demo.generated_test", "integer"]),
    "csgm iterations 10.0": (_cfg(**{"method_params.csgm.iterations": 10.0}), ["method_params.csgm.iterations"]),
    # noise levels are in [0, 1] pixel units
    "denoise sigma 50": (_cfg(tasks=["denoise_sigma50"]), ["denoise_sigma50", "sigma 50"]),
    "sr noise sigma 3": (_cfg(tasks=["sr4_noise3"]), ["sr4_noise3", "sigma"]),
    # per-task blocks: the method's own schema, configured tasks only
    "per-task misspelt tv key": (_cfg(**{"method_params.tv.per_task.sr4": {"lamda": 0.1}}),
                                 ["method_params.tv.per_task.sr4", "lamda"]),
    "per-task misspelt csgm key": (_cfg(**{"method_params.csgm.per_task.sr4": {"iteration": 5}}),
                                   ["method_params.csgm.per_task.sr4", "iteration"]),
    "per-task lam: big": (_cfg(**{"method_params.tv.per_task.sr4": {"lam": "big"}}),
                          ["method_params.tv.per_task.sr4.lam", "big"]),
    "per-task float integer": (_cfg(**{"method_params.yeh.per_task.sr4": {"restarts": 2.0}}),
                               ["method_params.yeh.per_task.sr4.restarts", "integer"]),
    "per-task unconfigured task": (_cfg(**{"method_params.tv.per_task.sr_4": {"lam": 0.1}}),
                                   ["method_params.tv.per_task.sr_4", "is not a task"]),
    "per-task shared dictionary": (_cfg(**{"method_params.sparse.per_task.sr4": {"dictionary": {"patch": 4}}}),
                                   ["method_params.sparse.per_task.sr4", "dictionary"]),
    "constrained on a noisy task": (_cfg(**{"method_params.tv.per_task": {"denoise_sigma0.1": {"constrained": True}}}),
                                    ["method_params.tv.per_task.denoise_sigma0.1", "constrained"]),
    "constrained everywhere, noisy task configured": (
        _cfg(**{"method_params.lowrank.constrained": True}), ["method_params.lowrank", "constrained"]),
    "sparse patch larger than the image": (_cfg(**{"method_params.sparse.dictionary": {"patch": 100}}),
                                           ["method_params.sparse", "patch"]),
    # an md5 override must name a file of the release
    "md5 override misspelt file": (_cfg(**{"data.celeba.md5": {"img_align_celba.zip": "0" * 32}}),
                                   ["data.celeba.md5.img_align_celba.zip"]),
    # method_tasks names configured methods and tasks
    "method_tasks unknown method": (_cfg(method_tasks={"yehh": ["sr4"]}), ["method_tasks.yehh"]),
    "method_tasks no such task": (_cfg(method_tasks={"tv": ["sr_4"]}), ["method_tasks.tv", "sr_4"]),
    # a folder that is a file, an archive that is a folder
    "folder dir is a file": (_cfg(**{"data.source": "folder", "data.folder.dir": str(ROOT / "README.md"),
                                     "data.folder.n_test": 2}), ["data.folder.dir", "not a folder"]),
    "celebahq archive is a folder": (_cfg(**{"data.source": "celebahq", "data.celebahq.archive": str(ROOT)}),
                                     ["data.celebahq.archive", "not a file"]),
}
if _has_key("prior.checkpoint"):
    BAD_CONFIGS["prior checkpoint missing"] = (
        _cfg(methods=["input", "csgm"], **{"prior.checkpoint": MISSING}), ["prior.checkpoint", MISSING])
if _has_key("data.celeba.dir"):
    BAD_CONFIGS["celeba dir missing"] = (
        _cfg(**{"data.source": "celeba", "data.celeba.dir": MISSING, "data.celeba.download": False}),
        ["data.celeba", MISSING])


@pytest.fixture(scope="module")
def bad_config_results(tmp_path_factory):
    wd = copy_workflow(tmp_path_factory.mktemp("badcfg"), with_profiles=False)
    cases = {k: cfg for k, (cfg, _) in BAD_CONFIGS.items()}
    cases["(control) the default config plans"] = make_config()
    return dry_run_many(wd, cases)


def test_control_config_plans(bad_config_results):
    r = bad_config_results["(control) the default config plans"]
    assert r["ok"], r["error"]


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_is_rejected_naming_the_key(bad_config_results, case):
    _, needles = BAD_CONFIGS[case]
    r = bad_config_results[case]
    assert not r["ok"], f"{case}: the workflow accepted it"
    for needle in needles:
        assert needle in r["error"], f"{case}: {needle!r} not in the message:\n{r['error']}"
    assert "Traceback" not in r["error"]


def test_there_are_at_least_20_bad_configs():
    assert len(BAD_CONFIGS) >= 20


# -- 2. runs: kill + resume, same seed twice --------------------------------------------

RUN_TASK = "denoise_sigma0.1"  # seeded noise: the corruption depends on the RNG
N_TEST = 3  # 1 package photograph + 2 generator faces, one restore shard each


def _run_config(name):
    return tiny_config(name=name, shard_size=1, tasks=[RUN_TASK], methods=["input"],
                       **{"data.demo.real_test": 1, "data.demo.generated_test": N_TEST - 1,
                          "data.demo.generated_val": 1})


def _targets(name):
    return [f"results/{name}/tables/summary.md", f"results/{name}/tables/summary.csv"]


def _run(wd, name, *extra, timeout=600):
    cfg = write_config(wd, _run_config(name), filename=f"{name}.yaml")
    return snakemake(wd, *_targets(name), "--cores", "2", "--configfile", str(cfg), *extra, timeout=timeout)


def _array_digests(npz_path):
    """sha256 of every array (dtype, shape and bytes): the artifact's content, not
    the zip container (whose member timestamps differ between runs)."""
    with np.load(npz_path, allow_pickle=False) as f:
        return {k: hashlib.sha256(f"{f[k].dtype}{f[k].shape}".encode() + np.ascontiguousarray(f[k]).tobytes())
                .hexdigest() for k in f.files}


TIMING_COLUMNS = {"seconds_per_image", "s / image"}


def _table_without_timings(csv_path):
    import csv

    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in rows]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """One uninterrupted run of the tiny config."""
    wd = copy_workflow(tmp_path_factory.mktemp("run_a"))
    r = _run(wd, "rel")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return wd


@pytest.mark.slow
def test_same_seed_twice_gives_identical_corruptions_and_tables(reference_run, tmp_path):
    wd = copy_workflow(tmp_path)
    r = _run(wd, "rel")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res_a, res_b = reference_run / "results/rel", wd / "results/rel"
    for rel in (f"corrupt/{RUN_TASK}/test.npz", "data/test.npz"):
        a, b = _array_digests(res_a / rel), _array_digests(res_b / rel)
        assert a == b, f"{rel} differs between two runs with the same seed"
    for k in range(N_TEST):
        rel = f"restore/{RUN_TASK}/input/s1-{k:03d}.npz"
        assert _array_digests(res_a / rel)["x_hat"] == _array_digests(res_b / rel)["x_hat"], rel
    ta, tb = (_table_without_timings(p / "tables/summary.csv") for p in (res_a, res_b))
    assert ta == tb and len(ta) == 1 and ta[0]["n"] == str(N_TEST)
    # and a different seed does change the noise (the comparison can fail)
    # (the data split does not depend on the seed: only the corruption reruns)
    cfg = write_config(wd, _run_config("rel"), filename="seed1.yaml", seed=1)
    r = snakemake(wd, f"results/rel/corrupt/{RUN_TASK}/test.npz", "--cores", "2", "--configfile", str(cfg))
    assert r.returncode == 0, r.stderr[-3000:]
    assert (_array_digests(res_b / f"corrupt/{RUN_TASK}/test.npz")["y"]
            != _array_digests(res_a / f"corrupt/{RUN_TASK}/test.npz")["y"])


def _file_ids(paths):
    return {str(p): (os.stat(p).st_ino, os.stat(p).st_mtime_ns) for p in paths}


def _finished_shards(log_text: str) -> set[str]:
    """Shards of the restore jobs that Snakemake reported finished in ``log_text``."""
    shard_of = {}
    for block in re.split(r"\n(?=\[|rule |localrule )", log_text):
        m_job, m_shard = re.search(r"jobid: (\d+)", block), re.search(r"shard=(\d+)", block)
        if block.lstrip().startswith(("rule restore:", "localrule restore:")) and m_job and m_shard:
            shard_of[m_job.group(1)] = m_shard.group(1)
    return {shard_of[j] for j in re.findall(r"Finished jobid: (\d+) \(Rule: restore\)", log_text) if j in shard_of}


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_keeps_finished_shards_and_reads_no_partial_file(reference_run, tmp_path):
    wd = copy_workflow(tmp_path)  # with profiles/default (as a user runs it)
    name = "rel"
    cfg = write_config(wd, _run_config(name), filename=f"{name}.yaml")
    shard_dir = wd / f"results/{name}/restore/{RUN_TASK}/input"
    run_log = tmp_path / "killed_run.log"
    proc = snakemake_popen(wd, *_targets(name), "--cores", "2", "--configfile", str(cfg), log_path=run_log)
    # SIGKILL the whole run (Snakemake and its jobs) once Snakemake has reported a restore shard finished
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if _finished_shards(run_log.read_text()):
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before it could be killed:\n{run_log.read_text()[-3000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(0.5)  # let the killed jobs' processes go
    finished_shards = _finished_shards(run_log.read_text())
    assert 1 <= len(finished_shards) < N_TEST, f"kill landed after shards {finished_shards} of {N_TEST}"

    # What the killed run left: every artifact under its final name loads (no partial file).
    # Shards a job wrote but Snakemake had not yet registered may be recomputed (it cannot
    # know they are complete); the ones it reported finished must not be.
    on_disk = sorted(p for p in (wd / "results").rglob("*.npz") if not p.name.startswith("."))
    for p in on_disk:
        with np.load(p, allow_pickle=False) as f:
            for k in f.files:
                f[k]  # reads and CRC-checks every member  # noqa: B018
    kept = [p for p in on_disk if p.parent != shard_dir or p.stem.split("-")[1] in finished_shards]
    before = _file_ids(kept)
    assert (wd / ".snakemake/locks").exists() and any((wd / ".snakemake/locks").iterdir())

    # a rerun refuses the stale lock with a clear message; --unlock, then rerun
    r = snakemake(wd, *_targets(name), "--cores", "2", "--configfile", str(cfg))
    assert r.returncode != 0 and "--unlock" in r.stdout + r.stderr
    r = snakemake(wd, *_targets(name), "--unlock", "--configfile", str(cfg))
    assert r.returncode == 0, r.stderr[-2000:]
    r = snakemake(wd, *_targets(name), "--cores", "2", "--configfile", str(cfg))
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-4000:]

    # finished shards (and data, corruptions) were not recomputed: same inode, same mtime
    assert _file_ids(kept) == before
    rerun_shards = set(re.findall(r"wildcards: task=[^,]+, method=input, shard=(\d+)", log))
    assert rerun_shards and not (rerun_shards & finished_shards), (rerun_shards, finished_shards)
    assert len(rerun_shards | finished_shards) == N_TEST
    # and the resumed run's table equals the uninterrupted one's
    assert (_table_without_timings(wd / f"results/{name}/tables/summary.csv")
            == _table_without_timings(reference_run / f"results/{name}/tables/summary.csv"))
    for k in range(N_TEST):
        rel = f"results/{name}/restore/{RUN_TASK}/input/s1-{k:03d}.npz"
        a, b = _array_digests(wd / rel), _array_digests(reference_run / rel)
        a.pop("diag_seconds"), b.pop("diag_seconds")  # wall-clock timing
        assert a == b, rel


# -- 3. a corrupt image in a folder dataset ----------------------------------------------


def _photo_folder(root: Path) -> Path:
    from PIL import Image

    folder = root / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        Image.fromarray(rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)).save(folder / f"face{k + 1}.png")
    # a truncated JPEG: a valid header, then nothing
    (folder / "a_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    return folder


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / "ganrestore/data/folder.py").exists(), reason="no folder dataset yet")
@pytest.mark.skipif(not _has_key("data.folder.on_error"), reason="no data.folder.on_error in the schema yet")
def test_corrupt_image_in_folder_dataset_raises_or_is_skipped_as_configured(tmp_path):
    wd = copy_workflow(tmp_path / "wf", with_profiles=False)
    folder = _photo_folder(tmp_path)
    results = {}
    for mode in ("raise", "skip"):
        name = f"folder_{mode}"
        cfg = write_config(wd, make_config(), filename=f"{name}.yaml", **{
            "name": name, "data.source": "folder", "data.folder.dir": str(folder),
            "data.folder.align": False, "data.folder.on_error": mode,
            "data.folder.n_test": 3, "data.folder.n_val": 0})
        r = snakemake(wd, f"results/{name}/data/test.npz", "--cores", "1", "--configfile", str(cfg))
        log_file = wd / f"results/{name}/logs/prepare_folder.log"
        results[mode] = (r, log_file.read_text() if log_file.exists() else "")
    r, log = results["raise"]
    assert r.returncode != 0
    assert "a_broken.jpg" in log and "cannot decode" in log and "on_error" in log, log[-2000:]
    assert not (wd / "results/folder_raise/data/test.npz").exists()
    r, log = results["skip"]
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r"WARNING.*skipping .*a_broken\.jpg", log), log[-2000:]
    d = np.load(wd / "results/folder_skip/data/test.npz")
    assert sorted(map(str, d["ids"])) == ["face1", "face2", "face3"]
    import csv

    with open(wd / "results/folder_skip/data/manifest.csv", newline="") as fh:
        sources = [row["source"] for row in csv.DictReader(fh)]
    assert sources == ["face1.png", "face2.png", "face3.png"]


# ----------------------------------------------------------------------------- SIGTERM
_TERMINATED_JOB = """
import sys, time
from pathlib import Path
from ganrestore.io import atomic_path
from ganrestore.logs import script_logging

out = Path(sys.argv[1])
with script_logging(sys.argv[2], 1):
    with atomic_path(out) as tmp:
        Path(tmp).write_text("half")
        print("writing", flush=True)
        time.sleep(60)
"""


@pytest.mark.parametrize("handled", [True, False], ids=["script_logging", "control_without"])
def test_a_terminated_job_leaves_no_hidden_temporary_file(tmp_path, handled):
    """SIGTERM (Snakemake cancelling a job, timeout, a cluster's limit) runs the
    job's cleanup: atomic_path's hidden temporary file is removed and the log says
    the job failed.  Control: the same job without script_logging leaves it."""
    import subprocess
    import sys

    code = _TERMINATED_JOB if handled else _TERMINATED_JOB.replace("with script_logging(sys.argv[2], 1):",
                                                                      "if True:")
    out, log = tmp_path / "figure.png", tmp_path / "job.log"
    p = subprocess.Popen([sys.executable, "-c", code, str(out), str(log)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "writing"
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=30)
    left = sorted(q.name for q in tmp_path.iterdir() if q.name.startswith(".figure.png."))
    assert not out.exists()
    if handled:
        assert rc == 128 + signal.SIGTERM and left == []
        assert "job failed" in log.read_text()
    else:
        assert rc == -signal.SIGTERM and len(left) == 1
