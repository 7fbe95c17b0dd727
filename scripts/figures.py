"""Snakemake script: the report figures (PNG + PDF).  Thin: plotting lives in ganrestore.figures."""

import logging
import time
from collections import defaultdict

import pandas as pd

from ganrestore import figures as F
from ganrestore.io import read_json
from ganrestore.tables import faces_aggregates
from ganrestore.logs import script_logging

sm = snakemake  # noqa: F821
log = logging.getLogger("ganrestore")


def by_pair(paths, evaluated):
    """Restore shards grouped by (task, method), from their .../restore/<task>/<method>/ folder."""
    out = defaultdict(list)
    for p in paths:
        parts = str(p).split("/")
        out[(parts[-3], parts[-2])].append(p)
    return {k: sorted(v) for k, v in out.items() if k in set(evaluated)}


with script_logging(sm.log[0], sm.threads):
    info = sm.params.info
    evaluated = [tuple(p) for p in sm.params.evaluated]
    shards = by_pair(sm.input.shards, evaluated)
    sub = f"experiment {info['name']} ({info['source']} data, {info['n_test']} test images)"
    per = (pd.concat([pd.read_csv(p, dtype={"image_id": str}) for p in sm.input.csvs], ignore_index=True)
           if sm.input.csvs else None)
    # one record per (task, method, image kind): the figures draw real photos and in-range faces apart
    aggs = pd.DataFrame(faces_aggregates([read_json(p, "metrics JSON", "evaluate") for p in sm.input.aggs]))
    kind_of = dict(zip(per["image_id"], per["kind"])) if per is not None and "kind" in per else {}

    def trace_kinds():
        return {k: [kind_of.get(i, "real") for i in ids] for k, ids in F.load_trace_ids(shards).items()}

    tasks, methods = info["tasks"], info["methods"]
    wanted = set(sm.output.keys())        # rule figure_<name>: that figure (PNG + PDF)

    def qualitative():
        d = F.load_qualitative(sm.input.data, dict(zip(tasks, sm.input.corrupt)), shards,
                               methods, info["image_size"], k=sm.params.k,
                               not_applicable=[(t, m) for t, m, ok in sm.params.pairs if not ok],
                               metric_csvs=dict(zip(evaluated, sm.input.csvs)), seed=info["seed"])
        return F.qualitative_grid(d["real"], d["inputs"], d["restored"], methods, ids=d["ids"],
                                  scores=d["scores"], title=f"Qualitative comparison, {sub}")

    makers = {
        "qualitative": qualitative,
        "perception_distortion": lambda: F.perception_distortion(aggs, per_image=per, tasks=tasks, methods=methods,
                                                                 title=f"Perception-distortion, {sub}"),
        "psnr_distributions": lambda: F.psnr_distributions(per, methods=methods, tasks=tasks,
                                                           title=f"Per-image PSNR, {sub}"),
        # one curve per optimisation, at the iteration numbers the restorations recorded
        "traces": lambda: F.optimisation_traces(
            F.load_traces(shards), steps=F.load_traces(shards, key="trace_step"),
            upstream=sm.params.figures["upstream"], tasks=tasks, methods=methods, kinds=trace_kinds(),
            title=f"Measurement loss along each optimisation, {sub}"),
        "cs_mse": lambda: F.cs_mse_curve(per, methods=methods,
                                         title=f"Compressed sensing, Gaussian A: MSE vs m/n (IAGAN Fig. 2), {sub}"),
    }
    unknown = wanted - set(makers) - {f"{k}_pdf" for k in makers}
    if unknown:
        raise ValueError(f"figures.py: no figure named {sorted(unknown)}")
    figs = {name: make() for name, make in makers.items() if name in wanted}
    for name, fig in figs.items():
        t0 = time.perf_counter()
        F.save_figure(fig, sm.output[name])
        log.info("figure %s: written in %.1f s", name, time.perf_counter() - t0)
