"""Plugins (ganrestore.plugins, issue 20): methods, prior architectures and data
sources from other packages, through entry points or the config's `plugins`.

Unit tests run in this process with the registries restored afterwards; the
workflow tests install the example plugin (examples/plugin) into a temporary
folder put on PYTHONPATH (never into the venv), run a tiny workflow that names
its method, and check that a plugin that fails to import or takes a registered
name stops the run before any job, naming it.
"""

from __future__ import annotations

import ast
import copy
import importlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from workflow_helpers import ROOT, SNAKEMAKE, copy_workflow, env, tiny_config, write_config

from ganrestore import methods, plugins
from ganrestore.configcheck import ConfigError, check_config

EXAMPLE = ROOT / "examples" / "plugin"
BASE_SCHEMA = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())


# -- isolation ---------------------------------------------------------------------------

@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """tmp_path on sys.path for plugin modules; every registry, the loader's state,
    $GANRESTORE_PLUGINS and sys.modules restored afterwards."""
    methods.load_builtins()
    plugins.ensure_loaded()
    saved = (dict(methods.REGISTRY), dict(plugins.PRIORS), dict(plugins.SOURCES), dict(plugins._LOADED),
             dict(plugins._EP_STATE))
    before = set(sys.modules)
    monkeypatch.setenv(plugins.ENV, "")          # restored (unset) afterwards, whatever load(export=True) did
    monkeypatch.delenv(plugins.ENV)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for reg, old in zip((methods.REGISTRY, plugins.PRIORS, plugins.SOURCES, plugins._LOADED, plugins._EP_STATE),
                        saved):
        reg.clear()
        reg.update(old)
    for name in set(sys.modules) - before:
        f = getattr(sys.modules[name], "__file__", None) or ""
        if f.startswith(str(tmp_path)):
            del sys.modules[name]


def write_module(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    importlib.invalidate_caches()
    return path


METHOD = """
    from ganrestore.methods import register

    @register({name!r}{extra})
    def restore(y, op, prior, cfg, seeds, upstream=None, task=None):
        '''A test method.'''
        from ganrestore.methods.trivial import restore_input
        return restore_input(y, op, prior, cfg, seeds)
"""


def method_module(folder, module, name, extra=""):
    return write_module(folder, module, METHOD.format(name=name, extra=extra))


def fake_distribution(site: Path, dist: str, group: str, entries: dict[str, str]) -> None:
    """A minimal installed distribution (dist-info with entry points) in ``site``."""
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()))
    importlib.invalidate_caches()


# -- built-in methods --------------------------------------------------------------------

def test_builtin_methods_are_imported_explicitly():
    """No module list with silent skips: load_builtins imports every module of
    ganrestore/methods that registers a method, by name."""
    src = (ROOT / "ganrestore/methods/__init__.py").read_text()
    tree = ast.parse(src)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "load_builtins")
    imported = {a.name for n in ast.walk(fn) if isinstance(n, ast.ImportFrom) and n.level == 1 for a in n.names}
    registering = {p.stem for p in (ROOT / "ganrestore/methods").glob("*.py")
                   if p.stem != "__init__" and "@register(" in p.read_text()}
    assert registering <= imported, f"not imported by load_builtins: {sorted(registering - imported)}"
    assert "_MODULES" not in src and "ModuleNotFoundError" not in src
    assert {"input", "bicubic", "tv", "csgm", "iagan", "yeh"} <= set(methods.available())


# -- registration and duplicates ---------------------------------------------------------

def test_a_taken_name_is_refused(isolated):
    old = methods.REGISTRY["input"]

    def mine(y, op, prior, cfg, seeds, upstream=None, task=None):
        return None

    with pytest.raises(plugins.DuplicateNameError, match=r"method 'input' is already registered by "
                                                          r"ganrestore\.methods\.trivial\.restore_input"):
        methods.register("input")(mine)
    assert methods.REGISTRY["input"] is old


def test_the_same_definition_may_register_again(isolated):
    """importlib.reload (and a test runner importing a module again) re-runs the
    decorator with a new function object of the same module and name: allowed."""
    method_module(isolated, "plug_reload", "_reload_method")
    mod = importlib.import_module("plug_reload")
    first = methods.REGISTRY["_reload_method"].fn
    mod = importlib.reload(mod)
    assert methods.REGISTRY["_reload_method"].fn is mod.restore is not first
    # another module may not take it
    method_module(isolated, "plug_other", "_reload_method")
    with pytest.raises(plugins.PluginError, match=r"plugin 'plug_other'.*DuplicateNameError.*_reload_method"):
        plugins.load(["plug_other"])


def test_a_plugin_cannot_take_a_builtin_name_whatever_the_import_order(isolated):
    """register() from outside the package loads the built-in methods first."""
    method_module(isolated, "plug_tv", "tv")
    with pytest.raises(plugins.PluginError) as e:
        plugins.load(["plug_tv"])
    msg = str(e.value)
    assert "plugin 'plug_tv'" in msg and "method 'tv' is already registered by ganrestore.methods.classical" in msg
    assert "plug_tv.py, line" in msg
    assert methods.get_method("tv").fn.__module__ == "ganrestore.methods.classical"


# -- loading: config modules, files, entry points, the environment ----------------------

def test_a_plugin_that_raises_on_import_is_named(isolated):
    write_module(isolated, "plug_broken", "x = 1\nraise ZeroDivisionError('boom in plugin')\n")
    with pytest.raises(plugins.PluginError) as e:
        plugins.load(["plug_broken"])
    msg = str(e.value)
    assert msg.startswith("plugin 'plug_broken' (named in the config's plugins) failed to load: "
                          "ZeroDivisionError: boom in plugin")
    assert f"{isolated / 'plug_broken.py'}, line 2" in msg
    assert "plug_broken" not in sys.modules


def test_a_missing_module_says_how_to_make_it_importable(isolated):
    with pytest.raises(plugins.PluginError, match=r"No module named 'no_such_plugin_xyz'; install it, put its "
                                                  r"folder on PYTHONPATH, or name its \.py file instead"):
        plugins.load(["no_such_plugin_xyz"])


@pytest.mark.parametrize("value", ["one_module", ["not a module"], [3], ["a..b"]])
def test_bad_plugins_values(isolated, value):
    with pytest.raises(plugins.PluginError, match=r"^plugins: "):
        plugins.load(value)


def test_config_module_and_py_file_plugins(isolated, monkeypatch):
    method_module(isolated, "plug_mod", "_by_module")
    sub = isolated / "elsewhere"
    sub.mkdir()
    path = method_module(sub, "plug_file", "_by_file")
    monkeypatch.chdir(isolated)
    names = plugins.load(["plug_mod", "elsewhere/plug_file.py"], export=True)
    assert names == ["plug_mod", "plug_file"]
    assert methods.get_method("_by_module").fn.__module__ == "plug_mod"
    assert methods.get_method("_by_file").fn.__module__ == "plug_file"
    # what the workflow's jobs receive: module names and absolute paths
    assert os.environ[plugins.ENV].split(os.pathsep) == ["plug_mod", str(path)]
    assert plugins.load(["plug_mod"]) == ["plug_mod"]            # once per process


def test_a_job_loads_the_exported_plugins(isolated, monkeypatch):
    """A workflow job (its own process) finds a config-named method through
    $GANRESTORE_PLUGINS on its first registry lookup."""
    method_module(isolated, "plug_env", "_from_env")
    r = subprocess.run([sys.executable, "-c", "from ganrestore.methods import get_method; "
                        "print(get_method('_from_env').fn.__module__)"],
                       capture_output=True, text=True, timeout=120,
                       env=dict(env(), **{plugins.ENV: "plug_env",
                                          "PYTHONPATH": os.pathsep.join([str(isolated), str(ROOT)])}))
    assert r.returncode == 0 and r.stdout.strip() == "plug_env", r.stderr[-2000:]


def test_entry_points_are_loaded(isolated):
    site = isolated / "site"
    site.mkdir()
    method_module(site, "plug_ep", "_from_entry_point")
    fake_distribution(site, "plug-ep-dist", "ganrestore.methods", {"fromep": "plug_ep"})
    sys.path.insert(0, str(site))
    try:
        plugins._EP_STATE.update(done=False, error=None, names=[])
        assert "ganrestore.methods:fromep" in plugins.load_entry_points()
        assert methods.get_method("_from_entry_point").fn.__module__ == "plug_ep"
    finally:
        sys.path.remove(str(site))


def test_a_broken_entry_point_is_named_and_stays_an_error(isolated):
    site = isolated / "site"
    site.mkdir()
    write_module(site, "plug_ep_broken", "import no_such_dependency_xyz\n")
    fake_distribution(site, "broken-dist", "ganrestore.priors", {"bad": "plug_ep_broken"})
    sys.path.insert(0, str(site))
    try:
        plugins._EP_STATE.update(done=False, error=None, names=[])
        for _ in range(2):   # a later lookup raises again instead of running without the plugin
            with pytest.raises(plugins.PluginError) as e:
                methods.available()
            msg = str(e.value)
            assert ("plugin 'bad' (entry point bad = plug_ep_broken in group ganrestore.priors, from broken-dist 0.1) "
                    "failed to load: ModuleNotFoundError: No module named 'no_such_dependency_xyz'") in msg
    finally:
        sys.path.remove(str(site))


# -- plugin method parameters ---------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {
    "k": {"type": "integer", "minimum": 1, "default": 3, "description": "a size"},
    "w": {"type": "number", "default": 0.5}}}


def test_config_schema_adds_only_named_plugin_methods(isolated):
    method_module(isolated, "plug_schema", "_schemed", extra=f", schema={SCHEMA!r}")
    method_module(isolated, "plug_noschema", "_plain")
    plugins.load(["plug_schema", "plug_noschema"])
    assert plugins.config_schema(BASE_SCHEMA, {"methods": ["input"]}) is BASE_SCHEMA
    out = plugins.config_schema(BASE_SCHEMA, {"methods": ["input", "_schemed"], "method_params": {"_plain": {}}})
    assert out is not BASE_SCHEMA and "_schemed" not in BASE_SCHEMA["properties"]["method_params"]["properties"]
    node = out["properties"]["method_params"]["properties"]["_schemed"]
    assert node["additionalProperties"] is False and node["default"] == {}
    assert set(node["properties"]) == {"k", "w", "per_task"}
    plain = out["properties"]["method_params"]["properties"]["_plain"]
    assert set(plain["properties"]) == {"per_task"}                 # no schema: no parameters


def validated(config: dict, schema: dict) -> dict:
    """``config`` validated (defaults filled) as the workflow does it."""
    from snakemake.utils import validate

    config = copy.deepcopy(config)
    with plugins.schema_file(schema, str(ROOT / "config/schema.yaml"), BASE_SCHEMA) as path:
        validate(config, schema=path, set_default=True)
    return config


def test_plugin_method_params_are_validated_like_builtin_ones(isolated):
    method_module(isolated, "plug_params", "_params", extra=f", schema={SCHEMA!r}")
    plugins.load(["plug_params"])
    cfg = {"name": "x", "tasks": ["sr4"], "methods": ["input", "_params"],
           "method_params": {"_params": {"k": 5, "per_task": {"sr4": {"w": 2.0}}}}}
    schema = plugins.config_schema(BASE_SCHEMA, cfg)
    got = validated(cfg, schema)
    assert got["method_params"]["_params"] == {"k": 5, "w": 0.5, "per_task": {"sr4": {"w": 2.0}}}
    assert got["plugins"] == []
    check_config(got, schema)                                          # per-task blocks, integers
    bad = copy.deepcopy(cfg)
    bad["method_params"]["_params"]["kk"] = 1
    with pytest.raises(Exception, match="Additional properties are not allowed"):
        validated(bad, schema)
    bad = copy.deepcopy(got)
    bad["method_params"]["_params"]["per_task"] = {"sr4": {"kk": 1}}
    with pytest.raises(ConfigError, match=r"method_params\._params\.per_task\.sr4.*keys of _params: k, w"):
        check_config(bad, schema)
    bad["method_params"]["_params"] = {"k": 2.0, "w": 0.5, "per_task": {}}
    with pytest.raises(ConfigError, match=r"method_params\._params\.k: 2\.0 is not an integer"):
        check_config(bad, schema)


def test_an_invalid_method_schema_is_refused(isolated):
    method_module(isolated, "plug_badschema", "_badschema", extra=", schema={'type': 'array'}")
    with pytest.raises(plugins.PluginError, match=r"plug_badschema.*schema must describe an object"):
        plugins.load(["plug_badschema"])
    assert "_badschema" not in methods.REGISTRY


# -- priors and sources: registries ----------------------------------------------------------

def test_prior_architectures_register_once(isolated):
    import torch

    class TinyG(torch.nn.Module):
        def __init__(self, nz=4):
            super().__init__()
            self.nz = nz

        def arch(self):
            return {"name": "tiny_g", "nz": self.nz}

    with pytest.raises(plugins.DuplicateNameError, match="'dcgan64_generator' is built in"):
        plugins.register_prior("dcgan64_generator", TinyG, ("nz",))
    plugins.register_prior("tiny_g", TinyG, ("nz",))
    plugins.register_prior("tiny_g", TinyG, ("nz",))                 # same class again: fine
    assert plugins.prior_architecture("tiny_g").cls is TinyG

    class OtherG(TinyG):
        pass

    with pytest.raises(plugins.DuplicateNameError, match="'tiny_g' is already registered"):
        plugins.register_prior("tiny_g", OtherG)


def test_data_sources_register_and_are_checked(isolated):
    import numpy as np

    def n_images(cfg, split):
        return {"test": cfg.get("n", 2), "val": 0}[split]

    with pytest.raises(plugins.DuplicateNameError, match="'demo' is built in"):
        plugins.register_source("demo", n_images)(lambda cfg, size: {})

    @plugins.register_source("grey_squares", n_images, schema={"type": "object", "properties": {"n": {"type": "integer"}}})
    def build(cfg, image_size):
        """Flat grey images."""
        n = cfg.get("n", 2)
        imgs = np.full((n, image_size, image_size, 3), 128, np.uint8)
        return {"test": {"images": imgs, "ids": [f"g{i}" for i in range(n)]},
                "val": {"images": imgs[:0], "ids": []}}

    out = plugins.build_source("grey_squares", {"n": 3}, 64)
    assert out["test"]["images"].shape == (3, 64, 64, 3) and out["manifest"] == []
    assert plugins.get_source("grey_squares").description == "Flat grey images."
    plugins.SOURCES["float_images"] = plugins.DataSource(
        "float_images", lambda cfg, s: {"test": {"images": np.zeros((2, s, s, 3)), "ids": ["a", "b"]},
                                        "val": {"images": np.zeros((0, s, s, 3), np.uint8), "ids": []}},
        n_images)
    with pytest.raises(ValueError, match=r"'float_images': test images must be uint8"):
        plugins.build_source("float_images", {}, 64)
    with pytest.raises(ValueError, match=r"n_images says 5 test images, build gave 2"):
        plugins.SOURCES["grey_squares"] = plugins.DataSource(
            "grey_squares", build, lambda cfg, split: 5 if split == "test" else 0)
        plugins.build_source("grey_squares", {"n": 2}, 64)


# -- the example plugin's own tests --------------------------------------------------------

def test_the_example_plugins_own_tests_pass():
    """examples/plugin/tests, run as its author would (its pyproject puts src/ on the path)."""
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=EXAMPLE,
                       capture_output=True, text=True, timeout=600, env=env())
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert " passed" in r.stdout and "failed" not in r.stdout


# -- the workflow -------------------------------------------------------------------------------

def _run(wd: Path, *args, pythonpath=(), timeout=900):
    e = env()
    e["PYTHONPATH"] = os.pathsep.join([*map(str, pythonpath), e.get("PYTHONPATH", "")]).strip(os.pathsep)
    return subprocess.run([SNAKEMAKE, *args], cwd=wd, capture_output=True, text=True, timeout=timeout, env=e)


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    """The example plugin installed (pip, non-editable, no dependencies) into a
    temporary folder that the workflow gets on PYTHONPATH: its entry point is
    then installed for that workflow only, the venv is untouched."""
    tmp = tmp_path_factory.mktemp("plugin")
    src = tmp / "src"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    site = tmp / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--no-compile", "--target", str(site), str(src)],
                       capture_output=True, text=True, timeout=600, env=env())
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    eps = [ep for d in importlib.metadata.distributions(path=[str(site)])
           for ep in d.entry_points if ep.group == "ganrestore.methods"]
    assert [(ep.name, ep.value) for ep in eps] == [("lowpass", "ganrestore_lowpass")]
    return site


@pytest.fixture(scope="module")
def wd(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("wf"))


@pytest.mark.slow
def test_installed_plugin_method_gets_jobs_rows_figures(wd, installed_example):
    cfg = tiny_config("plugin_named", methods=["input", "lowpass"], **{"method_params.lowpass": {"sigma": 1.5}})
    write_config(wd, cfg, "named.yaml")
    r = _run(wd, "--cores", "2", "--configfile", "named.yaml", pythonpath=[installed_example])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = wd / "results/plugin_named"
    import pandas as pd

    summary = pd.read_csv(res / "tables/summary.csv")
    rows = summary[summary.method == "lowpass"]
    assert list(rows.task) == ["sr4"] and list(rows.status) == ["ok"] and list(rows.n) == [3]
    assert rows.psnr_mean.notna().all()
    assert "| sr4 | lowpass | ok | 3 |" in (res / "tables/summary.md").read_text()
    assert (res / "metrics/sr4/lowpass.json").is_file()
    assert len(list((res / "restore/sr4/lowpass").glob("*.npz"))) == 3       # shard_size 1: three jobs
    assert (res / "figures/qualitative.png").is_file()
    eff = yaml.safe_load((res / "config.yaml").read_text())
    assert eff["method_params"]["lowpass"] == {"sigma": 1.5, "lam": 0.05, "cg_iter": 200, "per_task": {}}


@pytest.mark.slow
def test_installed_plugin_not_named_changes_nothing(wd, installed_example):
    """Installed but not named: no job, no row, and the effective config is the
    file plus the built-in schema's defaults (no method_params.lowpass)."""
    write_config(wd, tiny_config("plugin_unnamed"), "unnamed.yaml")
    r = _run(wd, "-n", "--cores", "1", "--configfile", "unnamed.yaml", pythonpath=[installed_example])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "lowpass" not in r.stdout + r.stderr
    r = _run(wd, "results/plugin_unnamed/config.yaml", "--cores", "1", "--configfile", "unnamed.yaml",
             pythonpath=[installed_example])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    eff = yaml.safe_load((wd / "results/plugin_unnamed/config.yaml").read_text())
    assert "lowpass" not in eff["method_params"] and eff["plugins"] == []


@pytest.mark.slow
@pytest.mark.parametrize("case", ["raises", "duplicate"])
def test_a_bad_plugin_stops_the_run_before_any_job(wd, tmp_path, case):
    if case == "raises":
        write_module(tmp_path, "bad_plugin", "import math\nmath.sqrt(-1)\n")
        expect = ["plugin 'bad_plugin' (named in the config's plugins) failed to load: ValueError: math domain error",
                  f"{tmp_path / 'bad_plugin.py'}, line 2"]
    else:
        method_module(tmp_path, "bad_plugin", "input")
        expect = ["plugin 'bad_plugin' (named in the config's plugins) failed to load: DuplicateNameError: "
                  "method 'input' is already registered by ganrestore.methods.trivial.restore_input; "
                  "bad_plugin.restore cannot register it again"]
    name = f"bad_plugin_{case}"
    write_config(wd, tiny_config(name, plugins=["bad_plugin"]), f"{name}.yaml")
    r = _run(wd, "--cores", "1", "--configfile", f"{name}.yaml", pythonpath=[tmp_path])
    assert r.returncode != 0
    for text in expect:
        assert text in r.stderr, r.stderr[-3000:]
    assert not (wd / "results" / name).exists()
    assert "rule " not in r.stdout + r.stderr.split("PluginError")[0]       # no job was scheduled


def test_a_checkpoint_of_a_plugin_architecture_loads(isolated, tmp_path):
    """save_prior / load_prior with a generator class a plugin registered: the
    sidecar names it, build_network finds it, the weights come back."""
    import torch

    from ganrestore.priors.checkpoint import load_prior, save_prior

    class TinyGen(torch.nn.Module):
        def __init__(self, nz=4):
            super().__init__()
            self.nz = nz
            self.fc = torch.nn.Linear(nz, 3 * 8 * 8)

        def arch(self):
            return {"name": "tiny_gen", "nz": self.nz}

        def forward(self, z):
            return torch.tanh(self.fc(z)).view(-1, 3, 8, 8)

    plugins.register_prior("tiny_gen", TinyGen, ("nz",))
    torch.manual_seed(0)
    G = TinyGen(nz=5).eval()
    stem = save_prior(tmp_path / "tiny", G, None, {"note": "test"})
    prior = load_prior(stem)
    assert type(prior.G) is TinyGen and prior.G.nz == 5
    z = torch.randn(2, 5)
    torch.testing.assert_close(prior.G(z), G(z))


TOY_SOURCE = '''
import numpy as np
from ganrestore.plugins import register_source

SCHEMA = {"type": "object", "additionalProperties": False,
          "properties": {"n_test": {"type": "integer", "minimum": 1, "default": 3},
                         "n_val": {"type": "integer", "minimum": 0, "default": 1}}}


@register_source("toyfaces", n_images=lambda cfg, split: cfg.get("n_" + split, {"test": 3, "val": 1}[split]),
                 schema=SCHEMA)
def build(cfg, image_size):
    """Smooth random colour fields (a stand-in data set)."""
    rng = np.random.default_rng(0)
    out = {}
    for split in ("test", "val"):
        n = cfg.get("n_" + split, {"test": 3, "val": 1}[split])
        small = rng.integers(0, 256, size=(n, 4, 4, 3))
        img = np.repeat(np.repeat(small, image_size // 4, 1), image_size // 4, 2).astype(np.uint8)
        out[split] = {"images": img, "ids": [f"{split}{i}" for i in range(n)]}
    out["manifest"] = [{"split": s, "id": i} for s in ("test", "val") for i in out[s]["ids"]]
    return out
'''


@pytest.mark.slow
def test_a_plugin_data_source_feeds_the_workflow(wd):
    """data.source names a plugin's source: prepare_plugin builds the splits, the
    rest of the workflow runs on them; its block is validated by its schema."""
    (wd / "toy_source.py").write_text(TOY_SOURCE)
    cfg = tiny_config("plugin_source", methods=["input"], plugins=["toy_source.py"],
                      **{"data.source": "toyfaces", "data.toyfaces": {"n_test": 2}})
    write_config(wd, cfg, "source.yaml")
    r = _run(wd, "results/plugin_source/tables/summary.csv", "--cores", "2", "--configfile", "source.yaml")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    import numpy as np
    import pandas as pd

    summary = pd.read_csv(wd / "results/plugin_source/tables/summary.csv")
    assert list(summary.n) == [2] and list(summary.status) == ["ok"]
    with np.load(wd / "results/plugin_source/data/test.npz") as d:
        assert list(d["ids"]) == ["test0", "test1"]
    bad = dict(cfg)
    bad["data"] = {**cfg["data"], "toyfaces": {"n_tset": 2}}
    write_config(wd, bad, "bad_source.yaml")
    r = _run(wd, "-n", "--configfile", "bad_source.yaml")
    assert r.returncode != 0 and "n_tset" in r.stdout + r.stderr
