"""The tiny runnable configs of .test/ (the Snakemake workflow catalogue's
convention), the default profile's two file names and the catalogue file
(issue 20).  Every .test config runs end to end here, so CI runs them all.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pandas as pd
import pytest
import yaml

from workflow_helpers import ROOT, SNAKEMAKE, copy_workflow, env

DOT_TEST = sorted((ROOT / ".test" / "config").glob("*.yaml"))
#: what the example plugin's .test config needs to import its module uninstalled
PLUGIN_SRC = ROOT / "examples" / "plugin" / "src"


def test_there_are_dot_test_configs():
    assert {"config.yaml", "gan.yaml", "plugin.yaml"} <= {p.name for p in DOT_TEST}
    names = [yaml.safe_load(p.read_text())["name"] for p in DOT_TEST]
    assert len(set(names)) == len(names), names            # each writes its own results/<name>/


@pytest.fixture(scope="module")
def wd(tmp_path_factory):
    wd = copy_workflow(tmp_path_factory.mktemp("wf"))
    shutil.copytree(ROOT / ".test", wd / ".test")
    return wd


@pytest.mark.slow
@pytest.mark.parametrize("path", DOT_TEST, ids=[p.stem for p in DOT_TEST])
def test_dot_test_config_runs(wd, path):
    e = env()
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGIN_SRC), e.get("PYTHONPATH", "")]))
    rel = path.relative_to(ROOT)
    r = subprocess.run([SNAKEMAKE, "--cores", "2", "--configfile", str(rel)], cwd=wd, capture_output=True,
                       text=True, timeout=900, env=e)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    cfg = yaml.safe_load(path.read_text())
    res = wd / "results" / cfg["name"]
    summary = pd.read_csv(res / "tables" / "summary.csv")
    assert set(summary.method) == set(cfg["methods"]) and set(summary.task) == set(cfg["tasks"])
    assert set(summary.status) <= {"ok", "n/a (method does not apply)"}, summary[["task", "method", "status"]]
    assert (res / "figures" / "qualitative.png").is_file()


def test_default_profile_has_both_names_with_the_same_settings():
    """Snakemake >= 9.19 reads profiles/default/profile.yaml, older versions config.yaml."""
    d = ROOT / "profiles" / "default"
    new, old = (yaml.safe_load((d / f).read_text()) for f in ("profile.yaml", "config.yaml"))
    assert new == old and new["rerun-incomplete"] is True


def test_default_profile_is_picked_up(tmp_path):
    wd = copy_workflow(tmp_path)
    r = subprocess.run([SNAKEMAKE, "-n", "--cores", "1", "results/demo/config.yaml"], cwd=wd, capture_output=True,
                       text=True, timeout=600, env=env())
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Using workflow specific profile profiles/default" in r.stdout + r.stderr


def test_workflow_catalogue_file():
    cat = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())
    usage = cat["usage"]
    assert set(usage) >= {"mandatory-flags", "software-stack-deployment", "report"}
    assert usage["mandatory-flags"]["desc"] and "--configfile" in usage["mandatory-flags"]["flags"]
    assert usage["software-stack-deployment"]["conda"] is True
    assert (ROOT / "config" / "README.md").is_file()
