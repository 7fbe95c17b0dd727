# Functions of the report rules (rules/report.smk), kept apart from the rules
# (snakemake --lint: no functions beside rules).  Included by that file; every
# rule file shares one namespace, so nothing else changes.

import json
import re
from pathlib import Path

from ganrestore.methods.classical import LOWRANK_DEFAULTS, TV_DEFAULTS


def plain_config():
    """The validated config as plain dicts and lists (for YAML)."""
    return json.loads(json.dumps(config))


def evaluated_pairs():
    return [(t, m) for t, m, ok in pairs() if ok]


def metrics_json(task, method):
    return f"{results_dir()}/metrics/{task}/{method}.json"


def metrics_csv(task, method):
    return f"{results_dir()}/metrics/{task}/{method}.csv"


def report_params():
    """What every caption states: experiment, images, tasks, methods; and the
    prior and the methods using it (the paper tables mark our cells whose
    setting differs from the paper's: ganrestore.tables.run_setting)."""
    return {
        "name": config["name"],
        "n_test": n_images("test"),
        "source": config["data"]["source"],
        "tasks": list(config["tasks"]),
        "methods": list(config["methods"]),
        "seed": config["seed"],
        "image_size": config["image_size"],
        "lpips": bool(LPIPS_SOURCE or os.path.exists(LPIPS_WEIGHTS)),
        "prior": prior_setting(),
        "prior_methods": [m for m in config["methods"] if get_method(m).needs_prior],
    }


def prior_setting():
    """The GAN prior as the papers' settings describe one: ``{arch, resolution,
    data, width}`` (e.g. dcgan, 64, celeba, 64), from the training settings when
    the workflow trains it, else from the checkpoint's JSON sidecar; None when
    no configured method uses a prior."""
    if not any(get_method(m).needs_prior for m in config["methods"]):
        return None
    prior = config["prior"]
    if prior.get("train", False):
        training = prior.get("training") or {}
        name, width = "dcgan64_generator", training.get("ngf")
        data = str(training.get("data", "teacher"))
    else:
        sidecar = Path(f"{resolve_checkpoint_stem(prior['checkpoint'])}.json")
        meta = json.loads(sidecar.read_text()) if sidecar.exists() else {}
        arch = meta.get("G", {}).get("arch", {})
        name, width = arch.get("name", "unknown"), arch.get("ngf")
        data = str(
            meta.get("data", {}).get("source")
            or meta.get("training", {}).get("data", "unknown")
        )
    m = re.match(r"([a-z]+?)(\d+)", name)
    if data.startswith("split:"):
        data = config["data"]["source"]
    elif data.startswith("teacher"):
        data = "gan-face-generate samples"
    return {
        "arch": m[1] if m else name,
        "resolution": int(m[2]) if m else None,
        "data": data,
        "width": width,
    }


def colorize_modes():
    """``{method: colorize mode}`` of the classical baselines in the run, on the
    colourisation task (the paper tables say how each one treats it)."""
    tasks = [t for t in config["tasks"] if TASKS[t].family == "colorize"]
    if not tasks:
        return {}
    defaults = {"tv": TV_DEFAULTS, "lowrank": LOWRANK_DEFAULTS, "sparse": {}}
    return {
        m: mcfg(m, tasks[0]).get("colorize", defaults[m].get("colorize"))
        for m in ("tv", "lowrank", "sparse")
        if m in config["methods"]
    }


def _table_outputs():
    out = {}
    for t, label in PAPER_TABLE_TITLES.items():
        out[f"{t}_html"] = report(
            f"{results_dir()}/tables/paper_{t}.html",
            caption=f"../report/{'paper_yeh2018' if t == 'yeh2018' else 'paper_iagan'}.rst",
            category="Tables",
            subcategory="The papers beside ours",
            labels={"table": label},
        )
        for ext in ("md", "csv", "tex"):
            out[f"{t}_{ext}"] = f"{results_dir()}/tables/paper_{t}.{ext}"
    out["results_html"] = report(
        f"{results_dir()}/tables/results.html",
        caption="../report/results_table.rst",
        category="Tables",
        subcategory="All results",
        labels={"table": "all results"},
    )
    out["results_csv"] = f"{results_dir()}/tables/results.csv"
    return out
