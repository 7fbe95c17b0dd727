"""The notebook API (ganrestore.run, issue 20): the same run, summary and error
messages as the command line.

Each API run happens in a fresh Python process (as in a notebook kernel), in its
own copy of the workflow, so the two runs compared share nothing but the code.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from workflow_helpers import copy_workflow, env, snakemake, tiny_config, write_config

API_SCRIPT = textwrap.dedent("""
    import json, sys
    import ganrestore

    configfile, wd, out = sys.argv[1:4]
    kw = json.loads(sys.argv[4])
    try:
        r = ganrestore.run(configfile, workdir=wd, workflow=wd, quiet=True, **kw)
    except ganrestore.RunError as e:
        json.dump({"error": str(e), "cause": type(e.cause).__name__}, open(out, "w"))
    else:
        json.dump({"name": r.name, "results_dir": str(r.results_dir),
                   "summary": None if r.summary is None else r.summary.to_dict("list"),
                   "tables": [str(p) for p in r.tables], "figures": [str(p) for p in r.figures],
                   "report": None if r.report is None else str(r.report), "config": r.config}, open(out, "w"))
""")

TIMING = ["seconds_per_image"]          # wall time: differs between any two runs


def api_run(tmp_path, configfile, wd, **kw) -> dict:
    out = tmp_path / "api_out.json"
    r = subprocess.run([sys.executable, "-c", API_SCRIPT, str(configfile), str(wd), str(out), json.dumps(kw)],
                       capture_output=True, text=True, timeout=900, env=env())
    assert r.returncode == 0 and out.exists(), r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_run_returns_the_same_summary_as_the_command_line(tmp_path):
    cfg = tiny_config("api_tiny", methods=["input", "bicubic", "tv"], **{"method_params.tv": {"max_iter": 20}})
    cli_wd = copy_workflow(tmp_path / "cli")
    api_wd = copy_workflow(tmp_path / "api")
    cli_cfg = write_config(cli_wd, cfg)
    api_cfg = write_config(api_wd, cfg)

    r = snakemake(cli_wd, "--cores", "2", "--configfile", cli_cfg.name)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    cli = pd.read_csv(cli_wd / "results/api_tiny/tables/summary.csv")

    got = api_run(tmp_path, api_cfg, api_wd, cores=2, report=True)
    api = pd.DataFrame(got["summary"])
    assert len(cli) == 3 and set(cli.method) == {"input", "bicubic", "tv"}
    pd.testing.assert_frame_equal(api.drop(columns=TIMING), cli.drop(columns=TIMING))

    res = api_wd / "results/api_tiny"
    assert got["name"] == "api_tiny" and got["results_dir"] == str(res)
    assert str(res / "tables/summary.md") in got["tables"] and str(res / "tables/summary.csv") in got["tables"]
    assert str(res / "figures/qualitative.png") in got["figures"]
    assert got["report"] == str(res / "report.html") and (res / "report.html").stat().st_size > 10_000
    assert not (res / ".report.partial.html").exists()
    assert got["config"]["name"] == "api_tiny" and got["config"]["method_params"]["tv"]["max_iter"] == 20


@pytest.mark.slow
@pytest.mark.parametrize("bad", [{"methods": ["input", "nope"]}, {"shard_size": 0}])
def test_a_bad_config_gives_the_command_lines_message(tmp_path, bad):
    wd = copy_workflow(tmp_path / "wf")
    path = write_config(wd, tiny_config("api_bad", **bad))
    r = snakemake(wd, "--cores", "1", "--configfile", path.name)
    assert r.returncode != 0
    got = api_run(tmp_path, path, wd, cores=1)
    assert "error" in got, got
    # the command line prints "<Exception> in file ..., line N:\n<message>" (+ a traceback)
    first = got["error"].splitlines()[:2]
    assert first[0] in r.stderr and first[1] in r.stderr, (got["error"], r.stderr[-3000:])
    key = "config error: methods: unknown method 'nope'" if "methods" in bad else "shard_size"
    assert key in got["error"]
    assert not (wd / "results/api_bad").exists()


def test_experiment_name_follows_the_workflow(tmp_path):
    from ganrestore.api import WORKFLOW_DIR, experiment_name

    p = tmp_path / "c.yaml"
    p.write_text("name: mine\n")
    assert experiment_name(p, None, WORKFLOW_DIR) == "mine"
    assert experiment_name(p, {"name": "over"}, WORKFLOW_DIR) == "over"
    assert experiment_name(None, None, WORKFLOW_DIR) == "demo"          # no file: the demo
    p.write_text("seed: 1\n")
    assert experiment_name(p, None, WORKFLOW_DIR) == "demo"             # the schema's default


def test_run_is_exported_lazily():
    r = subprocess.run([sys.executable, "-c", "import sys, ganrestore; assert 'snakemake' not in sys.modules; "
                        "assert ganrestore.run.__module__ == 'ganrestore.api'; print('ok')"],
                       capture_output=True, text=True, timeout=120, env=env())
    assert r.stdout.strip() == "ok", r.stderr[-2000:]
