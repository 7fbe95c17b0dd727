"""Bad configs stop the workflow with one block and nothing of its insides (issue
30, classes 4, 5 and 7): the key, what is wrong, what is allowed; no traceback
line.  Planning stays bounded (YAML anchor bombs, huge strings), inf / nan and
over-long names are refused, a schema error names the key the user wrote, and
plugins are resolved against the config file's folder, logged, and refused when
they are standard-library or installed modules that register nothing."""

from __future__ import annotations

import sys

import jsonschema
import pytest
import yaml

from ganrestore import configcheck as C
from ganrestore import methods, plugins
from workflow_helpers import ROOT, copy_workflow, make_config, snakemake, write_config  # noqa: I001

SCHEMA = yaml.safe_load((ROOT / "config/schema.yaml").read_text())


# -- bounds ------------------------------------------------------------------------------

def _laughs(levels=9, width=10) -> str:
    text = "lol0: &a0 [" + ", ".join(["lol"] * width) + "]\n"
    for i in range(1, levels):
        text += f"lol{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]\n"
    return text


def test_a_yaml_anchor_bomb_is_refused_naming_its_key():
    cfg = {"name": "x", **yaml.safe_load(_laughs())}            # a few hundred bytes, 10^9 values
    with pytest.raises(C.ConfigError, match=r"^lol8: expands to 1111111111 values"):
        C.check_bounds(cfg)


def test_the_expansion_is_counted_without_expanding():
    """A DAG of about 2^60 expanded values (15 shared levels of 16 aliases, 16
    distinct lists): counted exactly from the distinct nodes (the check returns
    at all: it never walks the expansion)."""
    node: list = ["leaf"]
    expanded = 2                          # the list and its string
    for _ in range(15):
        node = [node] * 16
        expanded = 1 + 16 * expanded
    assert expanded > 2 ** 60
    with pytest.raises(C.ConfigError) as e:
        C.check_bounds({"deep": {"a": node}})
    assert str(e.value).startswith(f"deep: expands to {1 + expanded} values")


def test_the_demo_and_paper_configs_are_within_bounds():
    for p in sorted((ROOT / "config").glob("*.yaml")):
        if p.name != "schema.yaml":
            C.check_bounds(yaml.safe_load(p.read_text()))


@pytest.mark.parametrize("value, where", [
    (float("inf"), "method_params.tv.lam"), (float("-inf"), "method_params.tv.lam"),
    (float("nan"), "method_params.tv.lam")])
def test_non_finite_numbers_are_refused_naming_the_key(value, where):
    cfg = make_config(**{where: value})
    with pytest.raises(C.ConfigError, match=rf"^{where}: {value!r} is not a finite number"):
        C.check_bounds(cfg)
    spelt = {"inf": ".inf", "-inf": "-.inf", "nan": ".nan"}[repr(value)]
    with pytest.raises(C.ConfigError, match="not a finite number"):
        C.check_bounds(yaml.safe_load(f"method_params: {{tv: {{lam: {spelt}}}}}"))      # as YAML spells them


def test_huge_strings_and_keys_are_refused():
    with pytest.raises(C.ConfigError, match=r"^name: a string of 5000000 characters, at most 4096"):
        C.check_bounds({"name": "n" * 5_000_000})
    with pytest.raises(C.ConfigError, match=r"a key of 10000 characters"):
        C.check_bounds({"method_tasks": {"k" * 10_000: []}})


def test_a_name_too_long_for_a_folder_is_refused():
    C.check_name("a" * C.MAX_NAME)
    with pytest.raises(C.ConfigError, match=rf"^name: 300 characters, at most {C.MAX_NAME}"):
        C.check_name("a" * 300)


# -- schema messages name the user's key -----------------------------------------------

def _schema_error(cfg):
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(cfg))
    assert errors
    return C.schema_error_message(jsonschema.exceptions.best_match(errors))


def test_an_unknown_key_names_the_key_and_what_is_allowed():
    msg = _schema_error(make_config(**{"data.demo.generated_tests": 3}))
    assert msg.startswith("data.demo.generated_tests: unknown key; allowed under data.demo: ")
    assert "generated_test" in msg and "real_test" in msg


def test_an_md5_override_error_names_the_key_the_user_wrote():
    msg = _schema_error(make_config(**{"data.celeba.md5": {"img_align_celba.zip": "xyz"}}))
    assert msg.startswith("data.celeba.md5.img_align_celba.zip: 'xyz' does not match")
    assert "schema[" not in msg and "additionalProperties" not in msg
    with pytest.raises(C.ConfigError, match=r"^data\.celeba\.md5\.img_align_celba\.zip: not a file of the CelebA"):
        C.check_md5_names(make_config(**{"data.celeba.md5": {"img_align_celba.zip": "xyz"}}))


def test_snakemakes_wrapped_validation_error_is_unwrapped():
    from snakemake.exceptions import WorkflowError

    try:
        try:
            jsonschema.validate({"seed": -1}, {"properties": {"seed": {"minimum": 0}}})
        except jsonschema.ValidationError as e:
            raise WorkflowError("Error validating config file.", e)
    except WorkflowError as w:
        assert C.schema_error_message(w) == "seed: -1 is less than the minimum of 0"


# -- plugins -------------------------------------------------------------------------------

@pytest.fixture
def isolated(monkeypatch, tmp_path):
    methods.load_builtins()
    plugins.ensure_loaded()
    saved = (dict(methods.REGISTRY), dict(plugins._LOADED))
    before = set(sys.modules)
    monkeypatch.delenv(plugins.ENV, raising=False)
    yield tmp_path
    methods.REGISTRY.clear()
    methods.REGISTRY.update(saved[0])
    plugins._LOADED.clear()
    plugins._LOADED.update(saved[1])
    for m in set(sys.modules) - before:
        sys.modules.pop(m, None)


def test_a_standard_library_plugin_is_refused_before_it_runs(isolated, capsys):
    sys.modules.pop("this", None)
    with pytest.raises(plugins.PluginError, match=r"'this' is a standard-library module, not a plugin"):
        plugins.load(["this"])
    assert "Beautiful is better than ugly" not in capsys.readouterr().out
    assert "this" not in sys.modules


def test_an_installed_module_that_registers_nothing_is_refused(isolated):
    with pytest.raises(plugins.PluginError, match=r"'yaml' is the installed module .*site-packages.*registers no"):
        plugins.load(["yaml"])


_PLUGIN = '''
from ganrestore.methods import register
from ganrestore.methods.trivial import restore_input

@register("{name}")
def restore(y, op, prior, cfg, seeds, upstream=None, task=None):
    return restore_input(y, op, prior, cfg, seeds, upstream=upstream, task=task)
'''


def test_a_relative_plugin_path_is_resolved_against_the_config_folder_and_logged(isolated, monkeypatch):
    cfgdir = isolated / "configs"
    cfgdir.mkdir()
    (cfgdir / "relplug.py").write_text(_PLUGIN.format(name="_relplug"))
    elsewhere = isolated / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    said = []
    plugins.load(["relplug.py"], base_dir=cfgdir, announce=said.append)
    assert methods.get_method("_relplug").fn.__module__ == "relplug"
    assert said == [f"plugin relplug loaded from {(cfgdir / 'relplug.py').resolve()}"]
    with pytest.raises(plugins.PluginError, match="no such file"):
        plugins.load(["../relplug.py"], base_dir=cfgdir)          # relative to configs/, not the cwd


# -- the workflow's output: one block, no frames ---------------------------------------------

@pytest.fixture(scope="module")
def wd(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("cfgerr"), with_profiles=False)


def _no_insides(out: str):
    frames = [line for line in out.splitlines() if line.lstrip().startswith('File "')]
    assert not frames and "Traceback" not in out, out[-3000:]


BAD = {
    "schema minimum": ({"seed": -1}, "seed: -1 is less than the minimum of 0"),
    "unknown key": ({"shard_sizes": 4}, "shard_sizes: unknown key; allowed under the top level"),
    "reserved name": ({"name": "cache"}, "name: 'cache' is reserved"),
    "name too long": ({"name": "n" * 300}, "name: 300 characters, at most 100"),
    "inf": ({"method_params.tv.lam": float("inf")}, "method_params.tv.lam: inf is not a finite number"),
    "nan": ({"method_params.csgm.lr": float("nan")}, "method_params.csgm.lr: nan is not a finite number"),
    "md5 unknown file": ({"data.celeba.md5": {"x.zip": "abc"}}, "data.celeba.md5.x.zip: not a file of the CelebA"),
    "stdlib plugin": ({"plugins": ["this"]}, "plugins: 'this' is a standard-library module"),
    "sparse dictionary_path missing": ({"method_params.sparse.dictionary_path": "/nonexistent/d.npz"},
                                       "method_params.sparse.dictionary_path: /nonexistent/d.npz does not exist"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_configs_output_is_one_block_without_frames(wd, case):
    overrides, needle = BAD[case]
    path = write_config(wd, make_config(**overrides), f"{case.replace(' ', '_')}.yaml")
    r = snakemake(wd, "-n", "--configfile", path.name, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert f"ganrestore: config error: {needle}" in out, out[-3000:]
    _no_insides(out)
    assert "Beautiful is better than ugly" not in out


@pytest.mark.slow
def test_an_anchor_bomb_config_is_refused_quickly_by_the_workflow(wd):
    """Under a list key (Snakemake merges mappings of a --configfile itself, before
    the workflow runs: a mapping bomb is out of its reach; see config/README.md)."""
    text = (wd / "config" / "config.yaml").read_text() + "method_tasks:\n  tv: [sr4]\n" + \
        "\n".join("  " + line for line in _laughs().splitlines()) + "\n"
    (wd / "bomb.yaml").write_text(text)
    r = snakemake(wd, "-n", "--configfile", "bomb.yaml", timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "ganrestore: config error: method_tasks: expands to" in out, out[-3000:]
    _no_insides(out)


@pytest.mark.slow
def test_a_config_in_another_folder_finds_its_relative_plugin(wd):
    sub = wd / "experiments"
    sub.mkdir(exist_ok=True)
    (sub / "myplug.py").write_text(_PLUGIN.format(name="_myplug"))
    cfg = make_config(name="relplug", methods=["input", "_myplug"], plugins=["myplug.py"])
    (sub / "rel.yaml").write_text(yaml.safe_dump(cfg))
    r = snakemake(wd, "-n", "--configfile", "experiments/rel.yaml", timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert f"ganrestore: plugin myplug loaded from {(sub / 'myplug.py').resolve()}" in out


# -- method_params.sparse.dictionary_path is honoured ------------------------------------

def test_the_sparse_dictionary_path_wins_over_the_learned_one():
    from ganrestore.methods.classical import _dictionary_path

    cfg = {"dictionary_path": "/mine.npz", "extra_inputs": {"dictionary": "results/x/classical/dictionary.npz"}}
    assert str(_dictionary_path(cfg)) == "/mine.npz"
    assert str(_dictionary_path({"extra_inputs": {"dictionary": "learned.npz"}})) == "learned.npz"


@pytest.mark.slow
def test_a_configured_dictionary_is_the_restore_input_and_nothing_is_learned(wd):
    import torch

    from ganrestore.solvers.sparse import save_dictionary

    save_dictionary(wd / "mydict.npz", torch.randn(3 * 36, 16), patch=6)
    cfg = make_config(name="owndict", tasks=["sr4"], methods=["input", "sparse"],
                      **{"method_params.sparse.dictionary_path": "mydict.npz"})
    path = write_config(wd, cfg, "owndict.yaml")
    r = snakemake(wd, "-n", "--configfile", path.name, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "learn_dictionary" not in out and "mydict.npz" in out


# -- counts within what the source delivers (the demo's: ganrestore.data.demo) ----------

@pytest.mark.parametrize("overrides, words", [
    ({"data.source": "celeba", "data.celeba.n_test": 10 ** 9}, "data.celeba.n_test: 1000000000 is more than "
                                                               "the 19962 images of CelebA's test partition"),
    ({"data.source": "celeba", "data.celeba.n_test": 100, "data.celeba.offset": 19900},
     "data.celeba.n_test: 100 after offset 19900"),
    ({"data.source": "celeba", "data.celeba.n_val": 20000}, "data.celeba.n_val: 20000"),
    ({"data.source": "celebahq", "data.celebahq.n_test": 29000, "data.celebahq.n_val": 2000},
     "is more than the 30000 images of CelebA-HQ"),
    ({"data.source": "folder", "data.folder.n_test": 10 ** 7}, "data.folder.n_test: 10000000 is more than"),
])
def test_counts_beyond_what_the_source_holds_are_refused(overrides, words):
    with pytest.raises(C.ConfigError, match=words):
        C.check_counts(make_config(**overrides))


def test_counts_within_the_sources_pass():
    for cfg in (make_config(**{"data.source": "celeba", "data.celeba.n_test": 19962}),
                make_config(**{"data.source": "celebahq", "data.celebahq.n_test": 30000}),
                make_config()):
        C.check_counts(cfg)
