# Shared helpers: config validation, result paths, shard helpers, final targets.
import math
import os
import sys
import time
from pathlib import Path

import yaml

from snakemake.common.configfile import load_configfile
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, update_config, validate

min_version("9.0")

START_TIME = time.time()

# An experiment's effective configuration is exactly one file plus the schema's
# defaults: the --configfile given, else the demo (config/config.yaml), with
# --config KEY=VALUE overrides on top.  It is written to results/<name>/config.yaml.
DEMO_CONFIG = Path(workflow.basedir) / "config" / "config.yaml"
if not workflow.overwrite_configfiles:
    _effective = load_configfile(str(DEMO_CONFIG))
    update_config(_effective, config)  # the --config overrides
    config.clear()
    config.update(_effective)
    CONFIG_SOURCE = "config/config.yaml (the demo: no --configfile given)"
else:
    CONFIG_SOURCE = ", ".join(
        os.path.relpath(p) if Path(p).is_relative_to(Path.cwd()) else str(p)
        for p in workflow.overwrite_configfiles
    )

# A refused config stops here with one block (the key, what is wrong, what is
# allowed) and no traceback: SystemExit, before Snakemake formats one.
from ganrestore.configcheck import (
    ConfigError as _ConfigError,
    check_bounds as _check_bounds,
    check_md5_names as _check_md5_names,
    config_error_text as _config_error_text,
    expand_profiles,
    schema_error_message as _schema_error_message,
)


def _config_error(msg):
    raise SystemExit(_config_error_text(str(msg), CONFIG_SOURCE))


# bounded before anything walks it (YAML anchor bombs, huge strings, inf / nan);
# md5 overrides named by the file the user wrote before the schema's pattern
try:
    _check_bounds(config)
    _check_md5_names(config)
except _ConfigError as e:
    _config_error(e)

# named profiles (method_params.yeh.profile: official) become explicit per-task
# values before anything else reads the config
try:
    _PROFILE_NOTES = expand_profiles(config)
except _ConfigError as e:
    _config_error(e)

# method_params the file itself sets (the schema's defaults fill in every method's)
_GIVEN_METHOD_PARAMS = list(config.get("method_params") or {})

# Plugins (ganrestore.plugins): methods, GAN prior architectures and data sources
# of other packages, from their installed entry points and the modules the
# config names under `plugins`, imported before validation so that a plugin
# method's own parameter schema joins method_params.  A plugin that fails to
# import or takes a registered name stops the run here, naming it.
# A config is trusted input: its plugins run here, on every invocation.  A
# relative .py path is resolved against the folder of the config file naming it.
from ganrestore import plugins as _plugins


def _plugins_base_dir():
    for _p in reversed(workflow.overwrite_configfiles or [DEMO_CONFIG]):
        if "plugins" in (load_configfile(str(_p)) or {}):
            return Path(_p).resolve().parent
    return Path.cwd()  # --config plugins=[...]


with open(Path(workflow.basedir) / "config" / "schema.yaml") as _f:
    _BASE_SCHEMA = yaml.safe_load(_f)
try:
    _plugins.load(
        config.get("plugins"),
        export=True,
        base_dir=_plugins_base_dir() if config.get("plugins") else None,
        announce=lambda _m: print(f"ganrestore: {_m}", file=sys.stderr),
    )
except _plugins.PluginError as e:
    _config_error(e)
CONFIG_SCHEMA = _plugins.config_schema(_BASE_SCHEMA, config)
try:
    with _plugins.schema_file(
        CONFIG_SCHEMA, "../config/schema.yaml", _BASE_SCHEMA
    ) as _s:
        validate(config, schema=_s, set_default=True)
except WorkflowError as e:
    _config_error(_schema_error_message(e))

# The library does the work; the workflow only wires artifacts together.
import ganrestore
from ganrestore.configcheck import (
    ConfigError,
    check_config,
    check_integers,
    check_name,
    check_pairs,
)
from ganrestore.methods import available as available_methods, get_method
from ganrestore.pipeline import method_config, n_shards, shard_bounds
from ganrestore.tasks import make_task

# What JSON Schema cannot say (safe name, integers that are ints, per-task
# blocks, md5 override names), against CONFIG_SCHEMA (with plugin methods').
try:
    check_name(config["name"])
    check_integers(config, CONFIG_SCHEMA)
except ConfigError as e:
    _config_error(str(e))


TASKS = {}
for _t in config["tasks"]:
    try:
        TASKS[_t] = make_task(
            _t, config["image_size"], config["seed"], config["task_options"]
        )
    except ValueError as e:
        _config_error(f"tasks: {e}" if _t in str(e) else f"tasks: {_t!r}: {e}")

for _m in config["methods"]:
    if _m not in available_methods():
        _config_error(
            f"methods: unknown method {_m!r}; available: {', '.join(available_methods())}"
        )
    _up = get_method(_m).upstream
    if _up and _up not in config["methods"]:
        _config_error(
            f"methods: {_m!r} starts from {_up!r}'s output: add {_up!r} to methods"
        )

try:
    _NOTES = check_config(config, CONFIG_SCHEMA)
except ConfigError as e:
    _config_error(str(e))
_NOTES += [
    f"method_params.{_m} is set but {_m!r} is not in methods"
    for _m in _GIVEN_METHOD_PARAMS
    if _m not in config["methods"]
]
for _note in _NOTES:
    print(f"ganrestore: note: {_note}", file=sys.stderr)


# The local job server (ganrestore.jobserver): short jobs fork from one process
# that imported torch once, instead of each paying 2-5 s of start-up.  Local
# runs only (cluster jobs and --sdm conda run every job in its own process);
# GANRESTORE_NO_JOBSERVER=1 turns it off.
JOB_SERVER = {}


def start_job_server():
    from snakemake.settings.types import DeploymentMethod

    from ganrestore import jobserver

    if os.environ.get("GANRESTORE_NO_JOBSERVER") or not workflow.local_exec:
        return
    if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method:
        return
    try:
        JOB_SERVER["proc"], JOB_SERVER["path"] = jobserver.start(
            log_dirs=[f"{results_dir()}/logs"]
        )
    except (OSError, RuntimeError) as e:
        print(
            f"ganrestore: no job server ({e}); every job starts its own Python",
            file=sys.stderr,
        )


def check_results_writable():
    """Before the first job: results/<name>/ (and every folder under it) can be
    written, else stop naming the folder and the errno."""
    from ganrestore.io import check_writable

    try:
        check_writable(results_dir())
    except OSError as e:
        raise SystemExit(f"ganrestore: {e.strerror or e}") from None


def stop_job_server():
    from ganrestore import jobserver

    if JOB_SERVER:
        jobserver.stop(JOB_SERVER.pop("proc"), JOB_SERVER.pop("path"))


def resolve_checkpoint_stem(stem):
    """A relative checkpoint stem names a file of the working directory or, failing
    that, one shipped with the ganrestore checkout (the committed demo prior), so a
    workflow run from another directory still finds it."""
    if Path(f"{stem}.json").exists() or Path(stem).is_absolute():
        return stem
    shipped = Path(ganrestore.__file__).resolve().parent.parent / stem
    return str(shipped) if Path(f"{shipped}.json").exists() else stem


# The papers' numbers, shipped with the workflow: relative to the working
# directory, which need not be the checkout (snakemake --directory .test).
PAPER_TABLES_DIR = os.path.relpath(Path(workflow.basedir) / "config" / "paper_tables")


def results_dir():
    return f"results/{config['name']}"


# Number of images per split, known when the DAG is built (one entry per data
# source; other data rule files add theirs).
N_IMAGES = {
    "demo": lambda split: (
        config["data"]["demo"]["real_test"] + config["data"]["demo"]["generated_test"]
        if split == "test"
        else None
    ),
}


def n_images(split="test"):
    src = config["data"]["source"]
    n = N_IMAGES[src](split)
    if split == "test" and (n is None or n < 1):
        _config_error(f"data: source {src!r} gives no test images")
    return n


def n_test_shards():
    return n_shards(n_images("test"), config["shard_size"])


def shard_range(shard):
    return shard_bounds(n_images("test"), config["shard_size"])[int(shard)]


def applies(task, method):
    """The method runs on the task: it applies to the task's family, the config's
    method_tasks does not leave the task out, and its upstream method runs there."""
    info = get_method(method)
    only = (config.get("method_tasks") or {}).get(method)
    if not info.applies_to(TASKS[task]) or (only is not None and task not in only):
        return False
    return info.upstream is None or applies(task, info.upstream)


def pairs():
    """Every configured (task, method) with whether the method applies."""
    return [(t, m, applies(t, m)) for t in config["tasks"] for m in config["methods"]]


def _applies_to_family(task, method):
    info = get_method(method)
    if not info.applies_to(TASKS[task]):
        return False
    return info.upstream is None or _applies_to_family(task, info.upstream)


def left_out_pairs():
    """Configured (task, method) pairs the method could run on but that the
    config's method_tasks leaves out (the tables say so, not 'n/a')."""
    return [[t, m] for t, m, ok in pairs() if not ok and _applies_to_family(t, m)]


def mcfg(method, task):
    return method_config(config["method_params"], method, task)


# each configured (task, method)'s merged parameters pass the method's own check
try:
    check_pairs(config, TASKS, mcfg)
except ConfigError as e:
    _config_error(str(e))


def restore_path(task, method, shard):
    return f"{results_dir()}/restore/{task}/{method}/s{config['shard_size']}-{int(shard):03d}.npz"


def shard_outputs(task, method):
    return [restore_path(task, method, k) for k in range(n_test_shards())]


def restore_inputs(wildcards):
    info = get_method(wildcards.method)
    inp = {"y": f"{results_dir()}/corrupt/{wildcards.task}/test.npz"}
    if info.upstream:
        inp["upstream"] = restore_path(wildcards.task, info.upstream, wildcards.shard)
    if info.needs_prior:
        stem = prior_checkpoint()
        inp["prior"] = f"{stem}.json"
        inp["prior_weights"] = f"{stem}.safetensors"
    inp.update(method_extra_inputs(wildcards))
    return inp


# Extra inputs per method (e.g. a learned dictionary): name -> function(wildcards)
# returning {input name: path}.  Rule files of methods fill this in.
METHOD_EXTRA_INPUTS = {}


def method_extra_inputs(wildcards):
    fn = METHOD_EXTRA_INPUTS.get(wildcards.method)
    return fn(wildcards) if fn else {}


# Files and folders named in the config that must exist, as (key, function
# returning the path; None where the key is unused, "" where it is required but
# unset).  Checked once every rule file is read (get_final_output() runs the
# check), so a typo stops the workflow before any job, naming the key.  Rule
# files may append theirs.
def _data_path(source, key, required=False):
    if config["data"]["source"] != source:
        return None
    path = config["data"].get(source, {}).get(key)
    return (path or "") if required else path


# (key, function returning the path, "dir" | "file" | None: what it must be)
CONFIG_PATHS = [
    ("data.folder.dir", lambda: _data_path("folder", "dir", required=True), "dir"),
    ("data.celebahq.dir", lambda: _data_path("celebahq", "dir"), "dir"),
    ("data.celebahq.archive", lambda: _data_path("celebahq", "archive"), "file"),
    ("data.celeba.dir", lambda: _data_path("celeba", "dir"), "dir"),
    ("data.celeba.archive", lambda: _data_path("celeba", "archive"), "file"),
    ("prior.checkpoint", lambda: _prior_weights(), "file"),
]


def _prior_weights():
    """The prior's weights file when a configured method needs a prior that is
    neither trained nor fetched by this workflow (prior.train: false, no prior.fetch).
    """
    prior = config.get("prior") or {}
    fetch = prior.get("fetch") or {}
    if (
        prior.get("train", False)
        or fetch.get("url")
        or fetch.get("file")
        or not prior.get("checkpoint")
    ):
        return None
    if not any(get_method(m).needs_prior for m in config["methods"]):
        return None
    return f"{resolve_checkpoint_stem(prior['checkpoint'])}.safetensors"


def check_config_paths():
    for key, path_of, kind in CONFIG_PATHS:
        path = path_of()
        if path == "":
            _config_error(f"{key}: not set")
        if path is None:
            continue
        p = Path(str(path))
        if not p.exists():
            _config_error(f"{key}: {path} does not exist")
        if kind == "dir" and not p.is_dir():
            _config_error(f"{key}: {path} is not a folder")
        if kind == "file" and not p.is_file():
            _config_error(f"{key}: {path} is not a file")


def get_final_output():
    check_config_paths()
    out = [f"{results_dir()}/tables/summary.md", f"{results_dir()}/tables/summary.csv"]
    out += EXTRA_FINAL_OUTPUTS
    return out


# Other rule files append report targets here (figures, paper tables, ...).
EXTRA_FINAL_OUTPUTS = []


wildcard_constraints:
    task=r"[A-Za-z0-9_.]+",
    method=r"[A-Za-z0-9_]+",
    split=r"test|val",
    shard=r"\d+",
