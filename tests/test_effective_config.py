"""An experiment's effective configuration is its own file plus the schema's
defaults, nothing else (issue 12): every shipped config, run through Snakemake's
own config handling, writes exactly that to results/<name>/config.yaml.

Oracle: the file as YAML with the schema's defaults filled in by
``snakemake.utils.validate`` (the validator the workflow uses), computed here
without the workflow; the workflow's copy comes from a real Snakemake run.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from workflow_helpers import ROOT, copy_workflow, snakemake

SHIPPED = sorted(p.name for p in (ROOT / "config").glob("*.yaml") if p.name != "schema.yaml")


def file_plus_defaults(cfg: dict) -> dict:
    """The file, its named profiles written out (ganrestore.configcheck.expand_profiles,
    the one documented rewrite), plus the schema's defaults."""
    from ganrestore.configcheck import expand_profiles

    out = copy.deepcopy(cfg)
    expand_profiles(out)
    validate(out, schema=str(ROOT / "config/schema.yaml"), set_default=True)
    return out


def effective(wd: Path, name: str, *args) -> dict:
    r = snakemake(wd, "--cores", "1", f"results/{name}/config.yaml", *args)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "is set but" not in r.stderr, r.stderr       # no method_params note
    return yaml.safe_load((wd / f"results/{name}/config.yaml").read_text())


@pytest.fixture(scope="module")
def wd(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("wf"))


def test_every_config_is_covered():
    assert {"config.yaml", "yeh2018.yaml", "yeh2018_official.yaml"} <= set(SHIPPED)


@pytest.mark.parametrize("fname", SHIPPED)
def test_shipped_config_is_its_file_plus_defaults(wd, fname):
    raw = yaml.safe_load((ROOT / "config" / fname).read_text())
    got = effective(wd, raw["name"], "--configfile", f"config/{fname}")
    assert got == file_plus_defaults(raw)


def test_no_configfile_runs_the_demo_and_config_overrides_apply(wd):
    raw = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    assert effective(wd, "demo") == file_plus_defaults(raw)
    raw["name"] = "demo_s32"
    raw["shard_size"] = 32
    assert effective(wd, "demo_s32", "--config", "name=demo_s32", "shard_size=32") == file_plus_defaults(raw)


def test_a_minimal_config_inherits_nothing_from_the_demo(wd):
    """The demo sets a short yeh run, tuned TV parameters and its tasks: none
    of it may reach a config that does not say so."""
    own = {"name": "mini", "tasks": ["sr4"], "methods": ["input", "yeh"],
           "prior": {"checkpoint": "ganrestore/priors/checkpoints/demo_dcgan32"}}
    path = wd / "mini.yaml"
    path.write_text(yaml.safe_dump(own))
    got = effective(wd, "mini", "--configfile", str(path))
    assert got == file_plus_defaults(own)
    demo = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    assert got["method_params"]["yeh"]["iterations"] != demo["method_params"]["yeh"]["iterations"]
    assert "per_task" not in got["method_params"].get("tv", {}) or not got["method_params"]["tv"]["per_task"]
    assert got["tasks"] == ["sr4"] and got["data"]["source"] == "demo"
