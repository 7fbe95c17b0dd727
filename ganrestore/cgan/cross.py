"""The cross-corruption table: what "a new model for each corruption" costs.

Every trained cGAN (one per task A) is applied to every task B's test
observations -- trained on A, tested on B -- with B's own operator view of the
observation (``A_input`` of B's ``y`` and B's condition channel: the mask is
part of the observation) and scored against the clean images: PSNR (mean of
per-image PSNR, data range 1), SSIM (scikit-image, Wang et al.) and LPIPS
(AlexNet v0.1).  The diagonal is the method ``cgan`` itself.  Beside them, the
methods that use *one* prior for every task (``yeh``, ``csgm``, ``iagan``)
from the workflow's own metrics of each task.

Two stages, so that restoring never reads clean images (DESIGN.md):
:func:`cross_restore` (per trained cGAN: restorations of every task's
observations) and :func:`cross_table` (metrics and the table in Markdown, CSV
and HTML).
"""

from __future__ import annotations

import csv
import io as _io
import json
import math
import time
from html import escape
from pathlib import Path

import numpy as np
import torch

from .. import io
from ..seeding import image_seeds
from ..tasks import make_task

#: metrics of the table: key -> (label, digits, higher is better)
METRICS = {"psnr": ("PSNR (dB)", 2, True), "ssim": ("SSIM", 3, True), "lpips": ("LPIPS", 3, False)}


def cross_restore(corrupt_paths: dict, checkpoint, trained_on: str, image_size: int, global_seed: int,
                  out_path, microbatch="auto", device=None) -> dict:
    """Apply the cGAN trained for ``trained_on`` (checkpoint stem) to the test
    observations of every task in ``corrupt_paths`` (task -> corrupt artifact),
    in index-aligned blocks (:func:`ganrestore.methods.run_method`).  Writes one
    artifact: ``tasks`` (names), ``x_hat_<k>`` / ``ids_<k>`` / ``failure_<k>``
    for the k-th task."""
    from ..methods import run_method  # noqa: PLC0415

    t0 = time.perf_counter()
    arrays, tasks = {}, list(corrupt_paths)
    cfg = {"checkpoint": str(checkpoint), "cross_task": True}
    if device:
        cfg["device"] = str(device)
    for k, name in enumerate(tasks):
        d = io.load_artifact(corrupt_paths[name])
        ids = [str(i) for i in d["ids"]]
        task = make_task(name, image_size, global_seed)
        res = run_method("cgan", torch.from_numpy(d["y"]), task.op, None, cfg,
                         image_seeds(global_seed, name, ids, "method:cgan"), task=task, microbatch=microbatch)
        got = set(np.asarray(res.extras["trained_on"]).tolist())
        if got != {trained_on}:
            raise ValueError(f"{checkpoint}: trained for {sorted(got)}, expected {trained_on!r}")
        arrays[f"x_hat_{k}"] = res.x_hat.detach().cpu().numpy().astype(np.float32)
        arrays[f"ids_{k}"] = np.asarray(ids, dtype=str)
        arrays[f"failure_{k}"] = np.asarray(res.diagnostics["failure"], dtype=str)
    arrays["tasks"] = np.asarray(tasks, dtype=str)
    meta = {"stage": "cgan_cross_restore", "trained_on": trained_on, "checkpoint": str(checkpoint),
            "tasks": tasks, "seed": global_seed, "microbatch": microbatch,
            "threads": torch.get_num_threads(), "seconds": time.perf_counter() - t0}
    io.save_artifact(out_path, arrays, meta)
    return meta


def _metric_fns(lpips_weights):
    from .. import metrics  # noqa: PLC0415

    fns = {"psnr": metrics.psnr, "ssim": metrics.ssim}
    if lpips_weights:
        fns["lpips"] = metrics.lpips_metric(lpips_weights)
    return fns


def _summary(values) -> dict:
    from ..metrics import summarize  # noqa: PLC0415

    v = np.asarray(values, np.float64)
    s = summarize(v)
    return {"mean": s["mean"], "ci95": s["ci95"], "n": int(np.isfinite(v).sum())}


def cross_metrics(split_path, restored: dict, lpips_weights=None) -> list[dict]:
    """Long rows ``{trained_on, tested_on, metric, mean, ci95, n, n_failed}`` from
    :func:`cross_restore` artifacts (``restored``: trained task -> path)."""
    x_all, ids_all = io.load_split(split_path)
    index = {i: k for k, i in enumerate(ids_all)}
    fns = _metric_fns(lpips_weights)
    rows = []
    for trained_on, path in restored.items():
        d = io.load_artifact(path)
        for k, tested_on in enumerate(str(t) for t in d["tasks"]):
            ids = [str(i) for i in d[f"ids_{k}"]]
            x = make_task(tested_on, x_all.shape[-1]).clean(x_all[[index[i] for i in ids]])
            x_hat = torch.from_numpy(d[f"x_hat_{k}"])
            failed = np.asarray(d[f"failure_{k}"], dtype=str) != ""
            ok = torch.from_numpy(~failed)
            for m, fn in fns.items():
                vals = np.full(len(ids), np.nan)
                if bool(ok.any()):
                    vals[~failed] = fn(x_hat[ok], x[ok])
                rows.append({"trained_on": trained_on, "tested_on": tested_on, "metric": m,
                             **_summary(vals), "n_failed": int(failed.sum())})
    return rows


def baseline_rows(aggregates: dict) -> list[dict]:
    """Long rows of the one-prior methods from the workflow's metrics JSONs
    (``aggregates``: (method, task) -> aggregate dict, or None where not run)."""
    rows = []
    for (method, task), a in aggregates.items():
        for m in METRICS:
            mean = None if a is None else a.get(f"{m}_mean")
            rows.append({"method": method, "tested_on": task, "metric": m,
                         "mean": math.nan if mean is None else float(mean),
                         "ci95": math.nan if a is None else float(a.get(f"{m}_ci95", math.nan)),
                         "n": None if a is None else a.get("n"),
                         "n_failed": None if a is None else a.get("n_failed"),
                         "status": "not run" if a is None else "ok"})
    return rows


def _fmt(v, digits):
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def table_grids(cross: list[dict], base: list[dict], tasks: list[str], baselines: list[str]) -> dict:
    """Per metric, ``(header, rows, bold)``: a row per trained cGAN ("cgan[A]") then per
    one-prior method, a column per tested task, the own-task cGAN (the diagonal)
    marked in ``bold``; the PSNR grid ends with the row "own cGAN − mean of the
    other cGANs" (dB).  Cells: mean over the images, '—' where not computed,
    'not run' where the method has no result on the task."""
    trained = list(dict.fromkeys(r["trained_on"] for r in cross))
    cx = {(r["trained_on"], r["tested_on"], r["metric"]): r for r in cross}
    bx = {(r["method"], r["tested_on"], r["metric"]): r for r in base}
    out = {}
    for m, (label, digits, _) in METRICS.items():
        if not any(k[2] == m for k in cx) and not any(k[2] == m and math.isfinite(r["mean"]) for k, r in bx.items()):
            continue
        header = ["model (trained on)"] + tasks + ["mean"]
        rows, bold = [], set()
        for a in trained:
            vals = [cx.get((a, b, m), {}).get("mean", math.nan) for b in tasks]
            cells = [f"cgan[{a}]"] + [_fmt(v, digits) for v in vals]
            fin = [v for v in vals if math.isfinite(v)]
            cells.append(_fmt(float(np.mean(fin)), digits) if len(fin) == len(vals) else "—")
            rows.append(cells)
            if a in tasks:
                bold.add((len(rows) - 1, 1 + tasks.index(a)))
        for meth in baselines:
            cells = [f"{meth} (one prior, all tasks)"]
            vals = []
            for b in tasks:
                r = bx.get((meth, b, m))
                if r is None or r["status"] != "ok":
                    cells.append("not run")
                    vals.append(math.nan)
                else:
                    cells.append(_fmt(r["mean"], digits))
                    vals.append(r["mean"])
            fin = [v for v in vals if math.isfinite(v)]
            cells.append(_fmt(float(np.mean(fin)), digits) if fin and len(fin) == len(vals) else "—")
            rows.append(cells)
        if m == "psnr" and len(trained) > 1:
            cells = ["own cGAN − mean of the other cGANs"]
            for b in tasks:
                own = cx.get((b, b, m), {}).get("mean", math.nan)
                others = [cx[(a, b, m)]["mean"] for a in trained if a != b and (a, b, m) in cx]
                cells.append(f"{own - float(np.mean(others)):+.2f}" if others and math.isfinite(own) else "—")
            rows.append(cells + [""])
        out[m] = (header, rows, bold)
    return out


def table_markdown(grids: dict, title: str, note: str) -> str:
    lines = [f"# {title}", "", note, ""]
    for m, (header, rows, bold) in grids.items():
        lines += [f"## {METRICS[m][0]}{'' if METRICS[m][2] else ' (lower is better)'}", "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for i, r in enumerate(rows):
            cells = [f"**{c}**" if (i, j) in bold else c for j, c in enumerate(r)]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def table_html(grids: dict, title: str, note: str) -> str:
    from ..tables import html_page  # noqa: PLC0415

    parts = []
    for m, (header, rows, bold) in grids.items():
        parts.append(f"<h3>{escape(METRICS[m][0])}{'' if METRICS[m][2] else ' (lower is better)'}</h3>")
        parts.append("<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr></thead><tbody>")
        for i, r in enumerate(rows):
            parts.append("<tr>" + "".join(
                f"<td><b>{escape(c)}</b></td>" if (i, j) in bold else f"<td>{escape(c)}</td>"
                for j, c in enumerate(r)) + "</tr>")
        parts.append("</tbody></table>")
    return html_page(title, note, "\n".join(parts))


def table_csv(cross: list[dict], base: list[dict]) -> str:
    cols = ["model", "trained_on", "tested_on", "metric", "mean", "ci95", "n", "n_failed", "status"]
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in cross:
        w.writerow({**r, "model": "cgan", "status": "ok" if not r["n_failed"] else f"{r['n_failed']} failed"})
    for r in base:
        w.writerow({**r, "model": r["method"], "trained_on": "one prior (all tasks)"})
    return buf.getvalue()


def cross_table(split_path, restored: dict, baseline_jsons: dict, tasks: list[str], baselines: list[str],
                out_md, out_csv, out_html, lpips_weights=None, where: str = "") -> dict:
    """Metrics of every (trained, tested) pair and the one-prior methods, written as
    Markdown, CSV and HTML.  ``baseline_jsons``: ``"method|task"`` -> metrics JSON
    path (pairs not run are absent)."""
    from ..io import write_text_atomic  # noqa: PLC0415

    cross = cross_metrics(split_path, restored, lpips_weights)
    aggs = {}
    for meth in baselines:
        for b in tasks:
            p = baseline_jsons.get(f"{meth}|{b}")
            aggs[(meth, b)] = json.loads(Path(p).read_text()) if p else None
    base = baseline_rows(aggs)
    grids = table_grids(cross, base, tasks, baselines)
    title = "Cross-corruption: every task's cGAN on every task (trained on A, tested on B)"
    note = (f"{where} Rows cgan[A]: the conditional GAN of seed 004 trained on task A's corruption, applied to "
            "task B's observation (B's A_input(y) and condition channel); the diagonal (bold) is the method "
            "cgan. Rows yeh / csgm / iagan: one GAN prior for every task (their own results on B). Mean "
            "over the test images; PSNR = mean of per-image PSNR, data range 1; SSIM: scikit-image, "
            "Gaussian window sigma 1.5; LPIPS: AlexNet v0.1, lower is better. 'not run': the method has no "
            "result on the task in this experiment." + ("" if lpips_weights else " LPIPS not computed."))
    write_text_atomic(out_md, table_markdown(grids, title, note))
    write_text_atomic(out_csv, table_csv(cross, base))
    write_text_atomic(out_html, table_html(grids, title, note))
    return {"cross": cross, "baselines": base}


__all__ = ["cross_restore", "cross_metrics", "cross_table", "table_grids", "table_markdown", "table_html",
           "table_csv", "baseline_rows", "METRICS"]
