# Functions of the report rules (rules/report.smk), kept apart from the rules
# (snakemake --lint: no functions beside rules).  Included by that file; every
# rule file shares one namespace, so nothing else changes.

from ganrestore.methods.classical import LOWRANK_DEFAULTS, TV_DEFAULTS


def evaluated_pairs():
    return [(t, m) for t, m, ok in pairs() if ok]


def metrics_json(task, method):
    return f"{results_dir()}/metrics/{task}/{method}.json"


def metrics_csv(task, method):
    return f"{results_dir()}/metrics/{task}/{method}.csv"


def report_params():
    """What every caption states: experiment, images, tasks, methods."""
    return {
        "name": config["name"],
        "n_test": n_images("test"),
        "source": config["data"]["source"],
        "tasks": list(config["tasks"]),
        "methods": list(config["methods"]),
        "seed": config["seed"],
        "image_size": config["image_size"],
        "lpips": bool(LPIPS_SOURCE or os.path.exists(LPIPS_WEIGHTS)),
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
