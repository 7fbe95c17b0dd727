# Shared helpers: config validation, result paths, shard helpers, final targets.
import math
import sys
import time
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

START_TIME = time.time()

validate(config, schema="../config/schema.yaml", set_default=True)

# The library does the work; the workflow only wires artifacts together.
import ganrestore
from ganrestore.methods import available as available_methods, get_method
from ganrestore.pipeline import method_config, n_shards, shard_bounds
from ganrestore.tasks import make_task


def _config_error(msg):
    raise ValueError(f"config error: {msg}")


TASKS = {}
for _t in config["tasks"]:
    try:
        TASKS[_t] = make_task(_t, config["image_size"])
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

for _m in config["method_params"]:
    if _m not in config["methods"]:
        print(
            f"ganrestore: note: method_params.{_m} is set but {_m!r} is not in methods",
            file=sys.stderr,
        )


def resolve_checkpoint_stem(stem):
    """A relative checkpoint stem names a file of the working directory or, failing
    that, one shipped with the ganrestore checkout (the committed demo prior), so a
    workflow run from another directory still finds it."""
    if Path(f"{stem}.json").exists() or Path(stem).is_absolute():
        return stem
    shipped = Path(ganrestore.__file__).resolve().parent.parent / stem
    return str(shipped) if Path(f"{shipped}.json").exists() else stem


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
    return get_method(method).applies_to(TASKS[task])


def pairs():
    """Every configured (task, method) with whether the method applies."""
    return [(t, m, applies(t, m)) for t in config["tasks"] for m in config["methods"]]


def mcfg(method, task):
    return method_config(config["method_params"], method, task)


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


CONFIG_PATHS = [
    ("data.folder.dir", lambda: _data_path("folder", "dir", required=True)),
    ("data.celebahq.dir", lambda: _data_path("celebahq", "dir")),
    ("data.celebahq.archive", lambda: _data_path("celebahq", "archive")),
    ("data.celeba.dir", lambda: _data_path("celeba", "dir")),
    ("data.celeba.archive", lambda: _data_path("celeba", "archive")),
    ("prior.checkpoint", lambda: _prior_weights()),
]


def _prior_weights():
    """The prior's weights file when a configured method needs a prior that is
    not trained by this workflow (prior.train: false)."""
    prior = config.get("prior") or {}
    if prior.get("train", False) or not prior.get("checkpoint"):
        return None
    if not any(get_method(m).needs_prior for m in config["methods"]):
        return None
    return f"{resolve_checkpoint_stem(prior['checkpoint'])}.safetensors"


def check_config_paths():
    for key, path_of in CONFIG_PATHS:
        path = path_of()
        if path == "":
            _config_error(f"{key}: not set")
        if path is not None and not Path(str(path)).exists():
            _config_error(f"{key}: {path} does not exist")


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
