"""Figures of the report (matplotlib, object-oriented API on the Agg canvas).

Every function takes arrays / DataFrames and returns a
:class:`matplotlib.figure.Figure`; :func:`save_figure` writes it as PNG and PDF
(atomically).  Nothing here reads workflow files or imports snakemake.

* :func:`qualitative_grid` - the slides' comparison figure (Yeh et al., ICASSP
  2018): rows real / input / one per method, columns tasks (a few images each).
* :func:`perception_distortion` - PSNR against LPIPS per method and task: the
  perception-distortion plane of seed ``002`` (Blau & Michaeli 2018), where
  lower LPIPS is better perceived quality and higher PSNR less distortion.
* :func:`psnr_distributions` - per-image PSNR per method, one panel per task.
* :func:`optimisation_traces` - objective against iteration for the GAN
  methods whose restorations carry an ``extras['trace']`` of shape (B, T).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

__all__ = ["save_figure", "qualitative_grid", "perception_distortion", "psnr_distributions",
           "optimisation_traces", "message_figure", "observation_image", "pick_images",
           "load_qualitative", "load_traces"]

MARKERS = "osD^vP*Xhp<>"


def _colors(n: int):
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def save_figure(fig: Figure, stem, dpi: int = 150) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf`` (atomic renames); returns both paths.

    ``stem`` may also be given with a ``.png``/``.pdf`` suffix, which is dropped.
    """
    from .io import atomic_path

    stem = Path(stem)
    if stem.suffix in (".png", ".pdf"):
        stem = stem.with_suffix("")
    out = []
    for ext in ("png", "pdf"):
        p = stem.with_name(f"{stem.name}.{ext}")
        with atomic_path(p, suffix=f".{ext}") as tmp:
            # no creation date in the PDF: the same figure gives the same bytes
            fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight",
                        metadata={"CreationDate": None} if ext == "pdf" else None)
        out.append(p)
    return out


def message_figure(title: str, message: str) -> Figure:
    """A placeholder figure that says why there is nothing to plot."""
    fig = Figure(figsize=(6, 2.2))
    ax = fig.add_subplot()
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=10)
    return fig


def _hwc(img) -> np.ndarray:
    """(3,H,W) or (1,H,W) in [0,1] -> (H,W,3) clipped float for imshow."""
    a = np.asarray(img, dtype=np.float32)
    if a.ndim == 3 and a.shape[0] in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return np.clip(a, 0, 1)


def qualitative_grid(real, inputs: dict, restored: dict, methods: list[str], ids=None,
                     scores: dict | None = None, title: str = "", cell_inches: float = 1.1) -> Figure:
    """Rows: real, observed (the input), each method; columns: tasks, each with the chosen images.

    ``real``: (N,3,H,W) array in [0,1] (the N images shown).  ``inputs``:
    task -> (N,C,h,w) observation shown as an image (e.g. ``A_input y``,
    clipped).  ``restored``: task -> method -> (N,3,H,W) or ``None`` when the
    method does not apply to the task (cell says 'n/a'; a missing key says
    'not run').  Rows with non-finite pixels are drawn as 'diverged'.
    ``scores``: optional task -> method -> (N,) PSNR printed under each cell.
    """
    real = np.asarray(real)
    tasks = list(inputs)
    n = len(real)
    rows = ["real", "observed"] + list(methods)
    ncols = max(1, len(tasks) * n)
    fig = Figure(figsize=(cell_inches * ncols + 1.3, cell_inches * len(rows) + (0.6 if title else 0.3)))
    axes = fig.subplots(len(rows), ncols, squeeze=False, gridspec_kw={"wspace": 0.04, "hspace": 0.12})
    for r, row in enumerate(rows):
        for ti, task in enumerate(tasks):
            for k in range(n):
                ax = axes[r, ti * n + k]
                ax.set_xticks([])
                ax.set_yticks([])
                for s in ax.spines.values():
                    s.set_visible(False)
                if r == 0 and k == 0:
                    ax.set_title(task, fontsize=8, loc="left")
                if ti == 0 and k == 0:
                    ax.set_ylabel(row, fontsize=8, rotation=0, ha="right", va="center")
                if row == "real":
                    ax.imshow(_hwc(real[k]), interpolation="nearest")
                    if ids is not None:
                        ax.text(0.03, 0.97, str(ids[k]), transform=ax.transAxes, fontsize=4.5, va="top",
                                color="white", bbox={"facecolor": "black", "alpha": 0.5, "pad": 0.8, "lw": 0})
                    continue
                img = inputs[task][k] if r == 1 else None
                if r > 1:
                    per_task = restored.get(task, {})
                    if row not in per_task:
                        _blank(ax, "not run")
                        continue
                    if per_task[row] is None:
                        _blank(ax, "n/a")
                        continue
                    img = np.asarray(per_task[row])[k]
                if not np.all(np.isfinite(img)):
                    _blank(ax, "diverged", color="#f4d4d4")
                    continue
                ax.imshow(_hwc(img), interpolation="nearest")
                sc = (scores or {}).get(task, {}).get(row) if r > 1 else None
                if sc is not None and np.isfinite(sc[k]):
                    ax.set_xlabel(f"{sc[k]:.1f} dB", fontsize=6, labelpad=1)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def _blank(ax, text, color="#eeeeee"):
    ax.set_facecolor(color)
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=6, transform=ax.transAxes, color="#555555")


def perception_distortion(aggs, x: str = "lpips_mean", y: str = "psnr_mean", xerr: str | None = "lpips_ci95",
                          yerr: str | None = "psnr_ci95", per_image=None, title: str = "") -> Figure:
    """PSNR (up: less distortion) against LPIPS (left: better perceived) per
    method (colour) and task (marker), with 95% CIs as error bars.

    ``aggs``: DataFrame with ``task, method`` and the ``x``/``y`` columns.
    ``per_image``: optional per-image DataFrame (``task, method, lpips,
    psnr``) drawn as faint points behind the means.
    """
    import pandas as pd

    df = pd.DataFrame(aggs)
    need = {"task", "method", x, y}
    if df.empty or not need <= set(df.columns) or not np.isfinite(df[[x, y]].to_numpy(float)).all(1).any():
        return message_figure(title or "Perception-distortion", f"no results with both {x} and {y}")
    df = df[np.isfinite(df[[x, y]].to_numpy(float)).all(1)]
    methods = list(dict.fromkeys(df["method"]))
    tasks = list(dict.fromkeys(df["task"]))
    col = dict(zip(methods, _colors(len(methods))))
    mk = {t: MARKERS[i % len(MARKERS)] for i, t in enumerate(tasks)}
    fig = Figure(figsize=(6.8, 4.6))
    ax = fig.add_subplot()
    if per_image is not None:
        pi = pd.DataFrame(per_image)
        px, py = x.removesuffix("_mean"), y.removesuffix("_mean")
        if {px, py} <= set(pi.columns):
            for (t, m), g in pi.groupby(["task", "method"], sort=False):
                if m in col and t in mk:
                    ax.scatter(g[px], g[py], s=8, color=col[m], marker=mk[t], alpha=0.18, linewidths=0)
    for r in df.to_dict("records"):
        ex = r.get(xerr) if xerr else None
        ey = r.get(yerr) if yerr else None
        ax.errorbar(r[x], r[y], xerr=ex if _fin(ex) else None, yerr=ey if _fin(ey) else None,
                    fmt=mk[r["task"]], color=col[r["method"]], ms=7, capsize=2, lw=0.8, mec="black", mew=0.4)
    from matplotlib.lines import Line2D

    h1 = [Line2D([], [], color=col[m], marker="o", ls="", label=m) for m in methods]
    h2 = [Line2D([], [], color="gray", marker=mk[t], ls="", label=t) for t in tasks]
    leg = ax.legend(handles=h1, title="method", fontsize=7, title_fontsize=7, loc="upper left",
                    bbox_to_anchor=(1.01, 1.0))
    ax.add_artist(leg)
    ax.legend(handles=h2, title="task", fontsize=7, title_fontsize=7, loc="lower left", bbox_to_anchor=(1.01, 0.0))
    ax.set_xlabel(f"LPIPS ({x}; lower = better perceived quality)" if "lpips" in x else x)
    ax.set_ylabel(f"PSNR dB ({y}; higher = less distortion)" if "psnr" in y else y)
    ax.grid(alpha=0.3)
    ax.set_title(title or "Perception-distortion plane", fontsize=10)
    return fig


def _fin(v) -> bool:
    return v is not None and isinstance(v, (int, float, np.floating)) and math.isfinite(float(v))


def psnr_distributions(per_image, metric: str = "psnr", methods: list[str] | None = None,
                       title: str = "") -> Figure:
    """Per-image ``metric`` per method (box plot + the points), one panel per task.

    ``per_image``: DataFrame with ``task, method, <metric>`` (one row per image;
    non-finite values, i.e. failed restorations, are counted in the labels).
    """
    import pandas as pd

    df = pd.DataFrame(per_image)
    if df.empty or metric not in df.columns:
        return message_figure(title or f"{metric} per image", "no per-image results")
    tasks = list(dict.fromkeys(df["task"]))
    methods = methods or list(dict.fromkeys(df["method"]))
    col = dict(zip(methods, _colors(len(methods))))
    ncol = min(3, len(tasks))
    nrow = math.ceil(len(tasks) / ncol)
    fig = Figure(figsize=(3.4 * ncol, 2.8 * nrow + 0.4))
    axes = fig.subplots(nrow, ncol, squeeze=False)
    rng = np.random.default_rng(0)
    for i, t in enumerate(tasks):
        ax = axes[i // ncol, i % ncol]
        sub = df[df["task"] == t]
        ms = [m for m in methods if m in set(sub["method"])]
        data, labels = [], []
        for m in ms:
            v = sub.loc[sub["method"] == m, metric].to_numpy(float)
            ok = v[np.isfinite(v)]
            data.append(ok)
            bad = len(v) - len(ok)
            labels.append(f"{m}\n(n={len(ok)}" + (f", {bad} failed)" if bad else ")"))
        pos = np.arange(1, len(ms) + 1)
        if any(len(d) for d in data):
            ax.boxplot([d if len(d) else [np.nan] for d in data], positions=pos, widths=0.55,
                       showfliers=False, medianprops={"color": "black"})
        for p, d, m in zip(pos, data, ms):
            ax.scatter(p + rng.uniform(-0.15, 0.15, len(d)), d, s=10, color=col[m], alpha=0.8, zorder=3)
        ax.set_xticks(pos, labels, fontsize=6, rotation=30, ha="right")
        ax.set_title(t, fontsize=9)
        ax.set_ylabel(f"{metric.upper()}" + (" (dB)" if metric == "psnr" else ""), fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    for j in range(len(tasks), nrow * ncol):
        axes[j // ncol, j % ncol].axis("off")
    fig.suptitle(title or f"Per-image {metric.upper()} per method", fontsize=10)
    fig.tight_layout()
    return fig


def optimisation_traces(traces: dict, title: str = "", logy: bool = True) -> Figure:
    """Objective against iteration: ``traces`` maps (task, method) -> (B, T)
    array (one row per image; NaN-padded where an image stopped early).  One
    panel per task; per method the median over images (bold) and each image
    (faint)."""
    traces = {k: np.asarray(v, dtype=float) for k, v in traces.items() if v is not None and np.size(v)}
    if not traces:
        return message_figure(title or "Optimisation traces",
                              "no restoration carries an optimisation trace (extras['trace'])")
    tasks = list(dict.fromkeys(t for t, _ in traces))
    methods = list(dict.fromkeys(m for _, m in traces))
    col = dict(zip(methods, _colors(len(methods))))
    ncol = min(3, len(tasks))
    nrow = math.ceil(len(tasks) / ncol)
    fig = Figure(figsize=(3.6 * ncol, 2.8 * nrow + 0.4))
    axes = fig.subplots(nrow, ncol, squeeze=False)
    for i, t in enumerate(tasks):
        ax = axes[i // ncol, i % ncol]
        for m in methods:
            tr = traces.get((t, m))
            if tr is None:
                continue
            tr = tr.reshape(-1, tr.shape[-1])
            it = np.arange(tr.shape[1])
            for row in tr:
                ax.plot(it, row, color=col[m], alpha=0.15, lw=0.6)
            with np.errstate(all="ignore"):
                med = np.nanmedian(np.where(np.isfinite(tr), tr, np.nan), axis=0) if np.isfinite(tr).any() else None
            if med is not None:
                ax.plot(it, med, color=col[m], lw=1.8, label=f"{m} (median of {len(tr)})")
        pos = [tr[np.isfinite(tr)] for (tt, _), tr in traces.items() if tt == t]
        if logy and pos and all(len(p) and np.all(p > 0) for p in pos):
            ax.set_yscale("log")
        ax.set_title(t, fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
        ax.set_ylabel("objective", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    for j in range(len(tasks), nrow * ncol):
        axes[j // ncol, j % ncol].axis("off")
    fig.suptitle(title or "Optimisation traces", fontsize=10)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- reading artifacts
def observation_image(y, task_name: str, image_size: int) -> np.ndarray:
    """The observation shown as a picture: ``y`` itself when it is an image
    (masked, grey, low-resolution, noisy), else ``A_input(y)`` (e.g. the
    zero-filled inverse of compressed-sensing measurements); clipped to [0, 1]."""
    import torch

    y = torch.as_tensor(np.asarray(y))
    if y.ndim == 4 and y.shape[1] in (1, 3):
        return y.clamp(0, 1).numpy()
    from .tasks import make_task

    return make_task(task_name, image_size).op.A_input(y).clamp(0, 1).numpy()


def pick_images(ids, k: int) -> list[int]:
    """``k`` indices spread evenly over the split (first and last included)."""
    n = len(ids)
    if n == 0 or k <= 0:
        return []
    return sorted(set(np.linspace(0, n - 1, min(k, n)).round().astype(int).tolist()))


def load_qualitative(data_path, corrupt_paths: dict, shard_paths: dict, methods: list[str],
                     image_size: int, k: int = 3, not_applicable=(), metric_csvs: dict | None = None):
    """Arrays for :func:`qualitative_grid` from workflow artifacts.

    ``corrupt_paths``: task -> corruption ``.npz``; ``shard_paths``: (task,
    method) -> list of restore ``.npz`` shards; ``not_applicable``: (task,
    method) pairs shown as 'n/a'; ``metric_csvs``: (task, method) -> per-image
    metrics CSV (PSNR printed under the cells).  Returns ``dict(real=, inputs=,
    restored=, ids=, scores=)``.
    """
    import pandas as pd

    from .io import load_artifact, load_split

    x, ids = load_split(data_path)
    pick = pick_images(ids, k)
    chosen = [ids[i] for i in pick]
    real = x[pick].numpy()
    inputs, restored, scores = {}, {}, {}
    for task, cp in corrupt_paths.items():
        d = load_artifact(cp)
        pos = {str(i): j for j, i in enumerate(d["ids"])}
        inputs[task] = observation_image(d["y"][[pos[i] for i in chosen]], task, image_size)
        restored[task], scores[task] = {}, {}
        for m in methods:
            if (task, m) in set(not_applicable):
                restored[task][m] = None
                continue
            paths = shard_paths.get((task, m))
            if not paths:
                continue
            found = {}
            for p in paths:
                a = load_artifact(p)
                for j, i in enumerate(a["ids"]):
                    if str(i) in chosen:
                        found[str(i)] = a["x_hat"][j]
            if len(found) == len(chosen):
                restored[task][m] = np.stack([found[i] for i in chosen])
            csv = (metric_csvs or {}).get((task, m))
            if csv:
                df = pd.read_csv(csv, dtype={"image_id": str}).set_index("image_id")
                scores[task][m] = np.array([float(df.loc[i, "psnr"]) if i in df.index else np.nan
                                            for i in chosen])
    return {"real": real, "inputs": inputs, "restored": restored, "ids": chosen, "scores": scores}


def load_traces(shard_paths: dict, key: str = "trace") -> dict:
    """(task, method) -> (B, T) stacked ``extra_<key>`` arrays of restore shards
    (pairs whose shards carry none are left out)."""
    out = {}
    for (task, m), paths in shard_paths.items():
        parts = []
        for p in paths:
            with np.load(p, allow_pickle=False) as f:
                if f"extra_{key}" in f.files:
                    parts.append(np.asarray(f[f"extra_{key}"], dtype=float))
        if parts:
            T = max(a.shape[-1] for a in parts)
            parts = [np.pad(a.reshape(len(a), -1), ((0, 0), (0, T - a.shape[-1])), constant_values=np.nan)
                     for a in parts]
            out[(task, m)] = np.concatenate(parts)
    return out
