# Functions of the report rules (rules/report.smk), kept apart from the rules
# (snakemake --lint: no functions beside rules).  Included by that file; every
# rule file shares one namespace, so nothing else changes.

import json
import re
from pathlib import Path

from ganrestore.methods.classical import LOWRANK_DEFAULTS, TV_DEFAULTS
from ganrestore.figures import cs_ratio_tasks
from ganrestore.methods.gan import planned_iterations
from ganrestore.official import yeh_profile_of as official_profile_of


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
        **image_kind_counts(),
    }


def image_kind_counts():
    """``n_real`` / ``n_in_range``: the test split's real photos and faces in the
    generator's range (ganrestore.imagekinds; the evaluate stage reads them from
    the split's z): the demo's generated faces are in range, every other source
    is real photos."""
    if config["data"]["source"] == "demo":
        d = config["data"]["demo"]
        return {"n_real": int(d["real_test"]), "n_in_range": int(d["generated_test"])}
    return {"n_real": n_images("test"), "n_in_range": 0}


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


def data_description():
    """The test images in words, with the protocol that made them (the crop of
    CelebA, the resampling of CelebA-HQ, the alignment of a photo folder, the
    composition of the demo set)."""
    source = config["data"]["source"]
    d = config["data"].get(source) or {}
    size = config["image_size"]
    if source == "celeba":
        return (
            f"CelebA official test partition from image {d.get('offset', 0)}, "
            f"crop protocol {d.get('protocol')} ({size}×{size})"
        )
    if source == "celebahq":
        return f"CelebA-HQ, {d.get('resample')} resampling to {size}×{size}"
    if source == "folder":
        how = "faces detected and aligned" if d.get("align") else "central square crop"
        return f"photographs of {d.get('dir')}, {how}, {size}×{size}"
    if source == "demo":
        return (
            f"the offline demo set: {d.get('real_test')} real face photographs and "
            f"{d.get('generated_test')} faces sampled from the gan-face-generate generator, {size}×{size}"
        )
    return f"{source}, {size}×{size}"


def figure_params():
    """What the figure captions state beyond report_params(): the data and its
    protocol, each configured method's upstream, and per method with an
    optimisation of its own (a GAN method with ``iterations``) its setting per
    task; a method that post-processes another's result (an upstream and no
    ``iterations``: csgm_bp, iagan_bp, yeh_blend) shares that result's trace."""
    methods = list(config["methods"])
    upstream = {m: get_method(m).upstream for m in methods}

    def optimises(m):
        tasks = [t for t in config["tasks"] if applies(t, m)]
        return bool(tasks) and "iterations" in mcfg(m, tasks[0])

    traced = []
    for m in methods:
        if not get_method(m).needs_prior or not optimises(m):
            continue
        iters, halved = {}, []
        for t in config["tasks"]:
            if not applies(t, m):
                continue
            p = mcfg(m, t)
            iters[t] = planned_iterations(m, p, TASKS[t])
            if p.get("halve_if_noisy") and TASKS[t].noisy:
                halved.append(t)
        distinct = sorted(set(iters.values()), reverse=True)
        text = f"{distinct[0]} iterations"
        if len(distinct) > 1:
            text += (
                " (" + ", ".join(t for t in iters if iters[t] == distinct[0]) + "), "
            )
            text += ", ".join(
                f"{n} ({', '.join(t for t in iters if iters[t] == n)})"
                for n in distinct[1:]
            )
        p = mcfg(m, next(iter(iters)))
        traced.append(
            {
                "method": m,
                "iterations": iters,
                "iterations_text": text,
                "halved_on": halved,
                "restarts": p.get("restarts", 1),
                "trace_every": p.get("trace_every", 10),
                "starts_from": upstream[m],
                "shared_by": [
                    d for d in methods if upstream[d] == m and not optimises(d)
                ],
            }
        )
    return {"data": data_description(), "upstream": upstream, "traced": traced}


def run_profile():
    """What the run-time claims compare (ganrestore.claims): per task and method
    among csgm, iagan and dip, the iterations the effective configuration plans
    (ganrestore.methods.gan.planned_iterations; DIP's steps after its noisy
    division), CSGM's restarts, and DIP's official code's count on the task."""
    from ganrestore.methods.dip import settings as dip_settings

    out = {}
    for t, m, ok in pairs():
        if not ok or m not in ("csgm", "iagan", "dip"):
            continue
        p = mcfg(m, t)
        if m == "dip":
            rec = {
                "iterations": dip_settings(p, TASKS[t])["steps"],
                "official_iterations": dip_settings({}, TASKS[t])["steps"],
            }
        else:
            rec = {
                "iterations": planned_iterations(m, p, TASKS[t]),
                "restarts": p.get("restarts"),
            }
        out.setdefault(t, {})[m] = rec
    return out
