"""Helpers for tests that run the workflow: a private copy of it, a config with
overrides, Snakemake as a subprocess, and many dry runs in one process.

Run as a script (``python tests/workflow_helpers.py dryrun WORKDIR CASES.json
OUT.json``) it dry-runs every config of CASES.json through Snakemake's API in
one process -- importing torch and Snakemake once instead of once per config --
and writes ``{case id: {"ok": bool, "error": message}}``.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
WORKFLOW_PARTS = ["Snakefile", "rules", "scripts", "config", "report", "envs", "profiles"]


def copy_workflow(dest: Path, with_profiles: bool = True) -> Path:
    """A private copy of the workflow so tests never touch results/ of the checkout."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_PARTS:
        src = ROOT / name
        if not src.exists() or (name == "profiles" and not with_profiles):
            continue
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dest / name)
    return dest


def set_key(cfg: dict, dotted: str, value) -> dict:
    node = cfg
    *path, last = dotted.split(".")
    for p in path:
        node = node.setdefault(p, {})
    node[last] = value
    return cfg


def make_config(**overrides) -> dict:
    """config/config.yaml with dotted-key overrides (``data.demo.real_test=1``)."""
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    for key, value in overrides.items():
        set_key(cfg, key, value)
    return cfg


def write_config(dest: Path, cfg: dict | None = None, filename: str = "test_config.yaml", **overrides) -> Path:
    cfg = copy.deepcopy(cfg) if cfg is not None else make_config()
    for key, value in overrides.items():
        set_key(cfg, key, value)
    path = Path(dest) / filename
    path.write_text(yaml.safe_dump(cfg))
    return path


def tiny_config(name="tiny", **overrides) -> dict:
    """3 test images, one task, the cheap methods: a run of a few seconds per job;
    one image per call (microbatch 1), so that any shard size is allowed."""
    cfg = make_config(**{"name": name, "shard_size": 1, "microbatch": 1, "data.demo.real_test": 1,
                         "data.demo.generated_test": 2, "data.demo.generated_val": 1,
                         "tasks": ["sr4"], "methods": ["input", "bicubic"]})
    for key, value in overrides.items():
        set_key(cfg, key, value)
    return cfg


def env() -> dict:
    e = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    e["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{e.get('PATH', '')}"
    return e


def snakemake(workdir, *args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True,
                          timeout=timeout, env=env())


def snakemake_popen(workdir, *args, log_path=None) -> subprocess.Popen:
    """Snakemake in the background in its own process group (so a test can kill all of it)."""
    out = open(log_path, "w") if log_path else subprocess.DEVNULL
    return subprocess.Popen([SNAKEMAKE, *args], cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                            env=env(), start_new_session=True)


def dry_run_many(workdir: Path, cases: dict[str, dict], timeout=600) -> dict[str, dict]:
    """Dry-run each config of ``cases`` (id -> config dict) in one Python process."""
    workdir = Path(workdir)
    cases_path = workdir / "_cases.json"
    out_path = workdir / "_results.json"
    cases_path.write_text(json.dumps(cases))
    r = subprocess.run([sys.executable, __file__, "dryrun", str(workdir), str(cases_path), str(out_path)],
                       capture_output=True, text=True, timeout=timeout, env=env())
    if r.returncode != 0 or not out_path.exists():
        raise RuntimeError(f"dry-run runner failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return json.loads(out_path.read_text())


def _dryrun_main(workdir: str, cases_path: str, out_path: str) -> None:
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (ConfigSettings, OutputSettings, Quietness, ResourceSettings,
                                          StorageSettings)

    workdir = Path(workdir).resolve()
    cases = json.loads(Path(cases_path).read_text())
    results = {}
    for case_id, cfg in cases.items():
        cfg_path = workdir / f"_case_{len(results)}.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg))
        cwd = os.getcwd()
        try:
            with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
                wf = api.workflow(resource_settings=ResourceSettings(cores=1),
                                  config_settings=ConfigSettings(configfiles=[cfg_path]),
                                  storage_settings=StorageSettings(), workdir=workdir,
                                  snakefile=workdir / "Snakefile")
                wf.dag().execute_workflow(executor="dryrun")
            results[case_id] = {"ok": True, "error": ""}
        except BaseException as e:  # noqa: BLE001  (report whatever stops the workflow)
            msg = f"{type(e).__name__}: {e}"
            cause = e.__cause__ or e.__context__
            if cause is not None:
                msg += f"\ncaused by {type(cause).__name__}: {cause}"
            results[case_id] = {"ok": False, "error": msg}
        finally:
            os.chdir(cwd)
    Path(out_path).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "dryrun":
        _dryrun_main(*sys.argv[2:])
    else:
        sys.exit(f"usage: {sys.argv[0]} dryrun WORKDIR CASES.json OUT.json")
