"""Figures of the report (matplotlib, object-oriented API on the Agg canvas).

Every function takes arrays / DataFrames and returns a
:class:`matplotlib.figure.Figure` (with an Agg canvas attached, so
``fig.canvas.draw()`` renders it); :func:`save_figure` writes it as PNG and
PDF (atomically).  Nothing here reads workflow files or imports snakemake.

* :func:`qualitative_grid` - the slides' comparison figure (Yeh et al., ICASSP
  2018): rows real / input / one per method, columns tasks (a few images each).
* :func:`perception_distortion` - PSNR against LPIPS per method and task: the
  perception-distortion plane of seed ``002`` (Blau & Michaeli 2018), where
  lower LPIPS is better perceived quality and higher PSNR less distortion.
* :func:`psnr_distributions` - per-image PSNR per method, one panel per task.
* :func:`optimisation_traces` - the measurement loss ``||y - A x||^2`` against
  the iteration number for the GAN methods, whose restorations carry
  ``extras['trace']`` (B, T) and ``extras['trace_step']`` (B, T): one curve
  per optimisation (a method that post-processes another's result, e.g.
  ``csgm_bp``, carries its base's trace and is named in the base's legend
  entry instead of being drawn again).

Real photographs and faces in the generator's range (:mod:`ganrestore.imagekinds`:
a per-image ``kind`` column, an aggregate ``faces`` column) are drawn apart in
every figure that averages over images: filled markers / solid lines / plain
boxes for the real photos, hollow markers / dashed lines / hatched boxes for the
in-range faces (:data:`KIND_STYLE`).  A run with real images only looks as
before.

Colours and markers come from one place: :func:`method_color` (a fixed colour
per known method, a colour derived from the name for any other, so a plugin
method keeps its colour whatever else is plotted) and :func:`task_markers`.
Every method-coloured artist carries ``gid = <method>``.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import re
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

__all__ = ["save_figure", "qualitative_grid", "perception_distortion", "psnr_distributions",
           "optimisation_traces", "message_figure", "observation_image", "pick_images",
           "load_qualitative", "load_traces", "load_trace_ids", "method_color", "task_markers", "trace_groups",
           "METHOD_COLORS", "MARKERS"]

# One colour per method in every figure.  A method that post-processes another
# one's result (csgm_bp <- csgm, iagan_bp <- iagan, yeh_blend <- yeh) gets a
# lighter shade of its base's hue; the classical baselines and the trivial
# methods get hues of their own.
METHOD_COLORS = {
    "input": "#7f7f7f",
    "bicubic": "#bcbd22",
    "tv": "#8c564b",
    "lowrank": "#e377c2",
    "sparse": "#17becf",
    "yeh": "#2ca02c",
    "yeh_blend": "#86c96f",
    "csgm": "#1f77b4",
    "csgm_bp": "#72a9d8",
    "iagan": "#d62728",
    "iagan_bp": "#f08a7e",
}
# One marker per task (in the order of the configured task list).
MARKERS = "osD^vP*Xhp<>"
#: how each image kind is drawn: marker fill, line style, box hatch, legend label
KIND_STYLE = {
    "real": {"filled": True, "ls": "-", "hatch": None, "label": "real photos"},
    "in_range": {"filled": False, "ls": "--", "hatch": "////", "label": "in-range faces"},
}
_FACES_KIND = {"real": "real", "in-range": "in_range", "in_range": "in_range"}


def _kinds_in(df, col: str) -> list[str]:
    """The image kinds of ``df[col]`` (``kind`` or ``faces``), real first; ['real'] without the column."""
    if df is None or col not in getattr(df, "columns", ()):
        return ["real"]
    present = {_FACES_KIND.get(str(v)) for v in df[col].dropna().unique()}
    return [k for k in KIND_STYLE if k in present] or ["real"]


def _kind_rows(df, col: str, kind: str):
    """The rows of one kind (all rows when ``df`` has no ``col``)."""
    if col not in df.columns:
        return df if kind == "real" else df.iloc[0:0]
    return df[df[col].map(lambda v: _FACES_KIND.get(str(v))) == kind]


def method_color(name: str) -> str:
    """The colour of method ``name`` in every figure (hex).  Known methods:
    :data:`METHOD_COLORS`; any other name (a plugin method): a hue derived from
    the md5 of the name, so it depends on nothing but the name."""
    if name in METHOD_COLORS:
        return METHOD_COLORS[name]
    h = int(hashlib.md5(name.encode()).hexdigest()[:8], 16) / 2 ** 32
    r, g, b = colorsys.hsv_to_rgb(h, 0.65, 0.72)
    return "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in (r, g, b)))


def task_markers(tasks) -> dict:
    """``{task: marker}``: one marker per task, in the order given (pass the
    configured task list so every figure agrees)."""
    return {t: MARKERS[i % len(MARKERS)] for i, t in enumerate(dict.fromkeys(tasks))}


def _figure(figsize) -> Figure:
    """A Figure on the Agg canvas (``fig.canvas.draw()`` works, text has extents)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


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
    fig = _figure((6, 2.2))
    ax = fig.add_subplot()
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=10)
    return fig


#: Largest side an image is drawn at in a figure; bigger ones (512 / 1024 px) are
#: block-averaged down first, so a grid of many 1024-px cells stays small as PDF.
MAX_DRAWN_SIDE = 256


def _hwc(img) -> np.ndarray:
    """(3,H,W) or (1,H,W) in [0,1] -> (H,W,3) clipped float for imshow, at most
    :data:`MAX_DRAWN_SIDE` pixels a side (mean over f x f blocks)."""
    a = np.asarray(img, dtype=np.float32)
    if a.ndim == 3 and a.shape[0] in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    f = max(a.shape[0], a.shape[1]) // MAX_DRAWN_SIDE
    if a.ndim == 3 and f > 1 and a.shape[0] % f == 0 and a.shape[1] % f == 0:
        a = a.reshape(a.shape[0] // f, f, a.shape[1] // f, f, a.shape[2]).mean(axis=(1, 3))
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
    fig = _figure((cell_inches * ncols + 1.3, cell_inches * len(rows) + (0.6 if title else 0.3)))
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
                          yerr: str | None = "psnr_ci95", per_image=None, title: str = "",
                          tasks: list[str] | None = None, methods: list[str] | None = None) -> Figure:
    """PSNR (up: less distortion) against LPIPS (left: better perceived) per
    method (colour, :func:`method_color`) and task (marker, :func:`task_markers`
    over ``tasks``, default the tasks in order of appearance), with 95% CIs as
    error bars; the legends list ``methods`` and ``tasks`` in the order given.

    ``aggs``: DataFrame with ``task, method`` and the ``x``/``y`` columns, and
    optionally ``faces`` (real / in-range, :func:`ganrestore.tables.faces_aggregates`;
    an ``all`` row is not drawn): real photos filled, in-range faces hollow.
    ``per_image``: optional per-image DataFrame (``task, method, lpips,
    psnr``, optionally ``kind``) drawn as faint points behind the means.
    """
    import pandas as pd
    from matplotlib.lines import Line2D

    df = pd.DataFrame(aggs)
    need = {"task", "method", x, y}
    if df.empty or not need <= set(df.columns) or not np.isfinite(df[[x, y]].to_numpy(float)).all(1).any():
        return message_figure(title or "Perception-distortion", f"no results with both {x} and {y}")
    df = df[np.isfinite(df[[x, y]].to_numpy(float)).all(1)]
    if "faces" in df.columns:
        df = df[df["faces"].map(lambda v: _FACES_KIND.get(str(v))).notna()]
    kinds = _kinds_in(df, "faces")
    methods = _ordered(df["method"], methods)
    mk = task_markers(list(tasks or []) + list(df["task"]))
    present = _ordered(df["task"], tasks)
    fig = _figure((6.8, 4.6))
    ax = fig.add_subplot()
    if per_image is not None:
        pi = pd.DataFrame(per_image)
        px, py = x.removesuffix("_mean"), y.removesuffix("_mean")
        if {px, py} <= set(pi.columns):
            for kind in _kinds_in(pi, "kind"):
                filled = KIND_STYLE[kind]["filled"]
                for (t, m), g in _kind_rows(pi, "kind", kind).groupby(["task", "method"], sort=False):
                    if m in methods and t in mk:
                        c = method_color(m)
                        ax.scatter(g[px], g[py], s=8, marker=mk[t], alpha=0.18, gid=m,
                                   **({"color": c, "linewidths": 0} if filled else
                                      {"facecolors": "none", "edgecolors": c, "linewidths": 0.6}))
    for kind in kinds:
        for r in _kind_rows(df, "faces", kind).to_dict("records"):
            ex = r.get(xerr) if xerr else None
            ey = r.get(yerr) if yerr else None
            c = method_color(r["method"])
            eb = ax.errorbar(r[x], r[y], xerr=ex if _fin(ex) else None, yerr=ey if _fin(ey) else None,
                             fmt=mk[r["task"]], color=c, ms=7, capsize=2, lw=0.8, mew=0.4 if KIND_STYLE[kind]["filled"]
                             else 1.2, mec="black" if KIND_STYLE[kind]["filled"] else c,
                             mfc=c if KIND_STYLE[kind]["filled"] else "white")
            eb.lines[0].set_gid(r["method"])
    h1 = [Line2D([], [], color=method_color(m), marker="o", ls="", label=m, gid=m) for m in methods]
    h2 = [Line2D([], [], color="gray", marker=mk[t], ls="", label=t) for t in present]
    leg = ax.legend(handles=h1, title="method", fontsize=7, title_fontsize=7, loc="upper left",
                    bbox_to_anchor=(1.01, 1.0))
    ax.add_artist(leg)
    if len(kinds) > 1:
        h2 += [Line2D([], [], color="gray", marker="o", ls="", mfc="gray" if KIND_STYLE[k]["filled"] else "white",
                      label=KIND_STYLE[k]["label"]) for k in kinds]
    ax.legend(handles=h2, title="task / faces" if len(kinds) > 1 else "task", fontsize=7, title_fontsize=7,
              loc="lower left", bbox_to_anchor=(1.01, 0.0))
    ax.set_xlabel(f"LPIPS ({x}; lower = better perceived quality)" if "lpips" in x else x)
    ax.set_ylabel(f"PSNR dB ({y}; higher = less distortion)" if "psnr" in y else y)
    ax.grid(alpha=0.3)
    ax.set_title(title or "Perception-distortion plane", fontsize=10)
    return fig


def _ordered(present, order=None) -> list:
    """The distinct values of ``present``: those named in ``order`` first, in
    that order, then the others in order of appearance."""
    present = list(dict.fromkeys(present))
    first = [v for v in dict.fromkeys(order or []) if v in set(present)]
    return first + [v for v in present if v not in set(first)]


def _fin(v) -> bool:
    return v is not None and isinstance(v, (int, float, np.floating)) and math.isfinite(float(v))


def _xtick_crowding(ax, renderer, pad_px: float = 4.0) -> float:
    """How many times wider the widest x tick label (plus ``pad_px``) is than
    the spacing of the ticks (<= 1: the labels cannot overlap)."""
    ticks = ax.get_xticks()
    labels = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
    if len(ticks) < 2 or not labels:
        return 0.0
    px = ax.transData.transform(np.c_[ticks, np.zeros(len(ticks))])[:, 0]
    spacing = float(np.min(np.diff(np.sort(px))))
    widest = max(t.get_window_extent(renderer).width for t in labels) + pad_px
    return widest / max(spacing, 1e-9)


def _wrap_name(name: str, width: int = 11) -> str:
    """A long method name broken after underscores into lines of about ``width`` characters."""
    parts = name.replace("_", "_\n").split("\n")
    lines = [""]
    for p in parts:
        if lines[-1] and len(lines[-1]) + len(p) > width:
            lines.append("")
        lines[-1] += p
    return "\n".join(lines)


def psnr_distributions(per_image, metric: str = "psnr", methods: list[str] | None = None,
                       title: str = "", tasks: list[str] | None = None) -> Figure:
    """Per-image ``metric`` per method (box plot + every image as a point), one
    panel per task, the panels stacked so that the methods line up.

    ``per_image``: DataFrame with ``task, method, <metric>`` (one row per image;
    non-finite values, i.e. failed restorations, are counted in the labels) and
    optionally ``kind``: with both kinds each method has two boxes, real photos
    (left, filled points) and in-range faces (right, hatched, hollow points).
    ``methods`` (default: in order of appearance) gives the order of the
    slots; every panel has the same slots, a method without a result on that
    task is named in grey with a dash.  Tick labels are horizontal: the
    method's name (broken after an underscore when long), then ``n=<k>`` when the method has fewer finite images than
    the task's others and ``<j> failed`` when restorations failed; the figure is
    made wide enough that no two labels overlap.
    """
    import pandas as pd

    df = pd.DataFrame(per_image)
    if df.empty or metric not in df.columns:
        return message_figure(title or f"{metric} per image", "no per-image results")
    tasks = _ordered(df["task"], tasks)
    methods = _ordered(df["method"], methods)
    kinds = _kinds_in(df, "kind")
    n_m = len(methods)
    width = max(5.5, 0.62 * n_m + 1.2)
    ncol = max(1, min(len(tasks), int(10.0 // width)))
    nrow = math.ceil(len(tasks) / ncol)
    fig = _figure((width * ncol, 2.35 * nrow + 0.5))
    axes = fig.subplots(nrow, ncol, squeeze=False)
    rng = np.random.default_rng(0)
    pos = np.arange(1, n_m + 1)
    for i, t in enumerate(tasks):
        ax = axes[i // ncol, i % ncol]
        sub = df[df["task"] == t]
        vals = {m: sub.loc[sub["method"] == m, metric].to_numpy(float) for m in methods
                if (sub["method"] == m).any()}
        n_task = max((np.isfinite(v).sum() for v in vals.values()), default=0)
        labels, greyed = [], []
        for p, m in zip(pos, methods):
            if m not in vals:
                labels.append(_wrap_name(m))
                greyed.append(True)
                ax.text(p, 0.5, "–", transform=ax.get_xaxis_transform(), ha="center", va="center",
                        color="#999999", fontsize=14)
                continue
            v = vals[m]
            ok = v[np.isfinite(v)]
            bad = len(v) - len(ok)
            lab = _wrap_name(m) + (f"\nn={len(ok)}" if len(ok) != n_task else "") + (f"\n{bad} failed" if bad else "")
            labels.append(lab)
            greyed.append(False)
            sm = sub[sub["method"] == m]
            for j, kind in enumerate(kinds):
                kv = _kind_rows(sm, "kind", kind)[metric].to_numpy(float)
                kv = kv[np.isfinite(kv)]
                if not len(kv):
                    continue
                st, c = KIND_STYLE[kind], method_color(m)
                x0, w = (p, 0.55) if len(kinds) == 1 else (p - 0.2 + 0.4 * j, 0.34)
                bp = ax.boxplot([kv], positions=[x0], widths=w, showfliers=False, patch_artist=True,
                                medianprops={"color": "black"}, manage_ticks=False,
                                boxprops={"facecolor": "none", "hatch": st["hatch"], "edgecolor": "#555555"})
                bp["boxes"][0].set_gid(f"{m}:{kind}")
                ax.scatter(x0 + rng.uniform(-w / 4, w / 4, len(kv)), kv, s=10, alpha=0.85, zorder=3, gid=m,
                           **({"color": c} if st["filled"] else {"facecolors": "white", "edgecolors": c,
                                                                 "linewidths": 0.8}))
        ax.set_xticks(pos, labels, fontsize=7.5)
        for lab, g in zip(ax.get_xticklabels(), greyed):
            if g:
                lab.set_color("#999999")
        ax.set_xlim(0.4, n_m + 0.6)
        ax.set_title(f"{t}: {n_task} images per method", fontsize=9, loc="left")
        ax.set_ylabel(f"{metric.upper()}" + (" (dB)" if metric == "psnr" else ""), fontsize=8)
        ax.tick_params(axis="y", labelsize=7.5)
        ax.grid(axis="y", alpha=0.3)
    for j in range(len(tasks), nrow * ncol):
        axes[j // ncol, j % ncol].axis("off")
    sup = title or f"Per-image {metric.upper()} per method"
    if len(kinds) > 1:
        sup += "\nleft box, filled points: real photos; right box (hatched), hollow points: in-range faces"
    fig.suptitle(sup, fontsize=10)
    fig.tight_layout()
    # widen until the widest label fits between its neighbours
    for _ in range(4):
        renderer = fig.canvas.get_renderer()
        crowd = max(_xtick_crowding(ax, renderer) for ax in fig.axes)
        if crowd <= 1.0:
            break
        w, h = fig.get_size_inches()
        fig.set_size_inches(w * crowd * 1.05, h)
        fig.tight_layout()
    return fig


def trace_groups(task_traces: dict, upstream: dict | None = None) -> list[dict]:
    """One entry per optimisation among one task's traces.

    ``task_traces``: method -> ``(trace, step)`` arrays (``step`` may be None).
    Methods whose trace and steps are identical (a post-processing method
    carries its base's trace: csgm_bp <- csgm) form one group, named after the
    method the others derive from (``upstream``: method -> the method it starts
    from).  Returns ``[{"method", "shared_by": [...], "starts_from"}]`` in
    order of appearance; ``starts_from`` is the base's upstream when the base
    has an optimisation of its own (iagan <- csgm), else None.
    """
    upstream = upstream or {}

    def ancestors(m):
        out, seen = [], set()
        while upstream.get(m) and m not in seen:
            seen.add(m)
            m = upstream[m]
            out.append(m)
        return out

    def same(a, b):
        ta, sa = a
        tb, sb = b
        if np.shape(ta) != np.shape(tb) or not np.array_equal(ta, tb, equal_nan=True):
            return False
        if (sa is None) != (sb is None):
            return False
        return sa is None or (np.shape(sa) == np.shape(sb) and np.array_equal(sa, sb, equal_nan=True))

    groups: list[dict] = []
    for m, data in task_traces.items():
        for g in groups:
            if same(task_traces[g["method"]], data):
                if g["method"] in ancestors(m) or m not in ancestors(g["method"]):
                    g["shared_by"].append(m)
                else:                                   # m is the base of the group
                    g["shared_by"].insert(0, g["method"])
                    g["method"] = m
                break
        else:
            groups.append({"method": m, "shared_by": []})
    for g in groups:
        up = upstream.get(g["method"])
        g["starts_from"] = up if up and up not in g["shared_by"] else None
    return groups


def _registry_upstream(methods) -> dict:
    """method -> its upstream from the method registry (unknown names: none)."""
    try:
        from .methods import get_method
    except ImportError:  # pragma: no cover - the registry needs torch
        return {}
    out = {}
    for m in methods:
        try:
            out[m] = get_method(m).upstream
        except KeyError:
            out[m] = None
    return out


def optimisation_traces(traces: dict, steps: dict | None = None, upstream: dict | None = None,
                        title: str = "", logy: bool = True, tasks: list[str] | None = None,
                        methods: list[str] | None = None, kinds: dict | None = None) -> Figure:
    """The measurement loss ``||y - A x||^2`` (library units, per image) along
    each optimisation, against the iteration number; one panel per task.

    ``traces``: (task, method) -> (B, T) losses, one row per image, NaN-padded
    where an image stopped early or failed.  ``steps``: (task, method) -> (B, T)
    or (T,) iteration numbers of the columns (``extras['trace_step']``); where
    missing the x-axis counts recorded points and says so.  ``upstream``:
    method -> the method it starts from (default: the method registry).  One
    curve per optimisation (:func:`trace_groups`): methods that carry another's
    trace unchanged (csgm_bp, iagan_bp, yeh_blend) are named in its legend entry
    instead of being drawn again; a method that starts from another's result
    says so (iagan starts from csgm's z).  Per group the median over images
    (bold, in the legend) and each image (faint).  ``tasks`` / ``methods``:
    order of the panels / legend entries (default: order of appearance).
    ``kinds``: optional (task, method) -> the image kind of each row (real /
    in_range): with both kinds, one median per kind (real solid, in-range dashed).
    """
    traces = {k: np.asarray(v, dtype=float) for k, v in traces.items() if v is not None and np.size(v)}
    if not traces:
        return message_figure(title or "Optimisation traces",
                              "no restoration carries an optimisation trace (extras['trace'])")
    steps = steps or {}
    if upstream is None:
        upstream = _registry_upstream(dict.fromkeys(m for _, m in traces))
    tasks = _ordered((t for t, _ in traces), tasks)
    order = _ordered((m for _, m in traces), methods or list(upstream))
    ncol = min(3, len(tasks))
    nrow = math.ceil(len(tasks) / ncol)
    fig = _figure((3.9 * ncol, 3.1 * nrow + 0.5))
    axes = fig.subplots(nrow, ncol, squeeze=False)
    for i, t in enumerate(tasks):
        ax = axes[i // ncol, i % ncol]
        no_steps = False
        per = {}
        for m in order:
            tr = traces.get((t, m))
            if tr is None:
                continue
            tr = tr.reshape(-1, tr.shape[-1])
            st = steps.get((t, m))
            if st is not None:
                st = np.asarray(st, dtype=float)
                st = np.broadcast_to(st, tr.shape) if st.ndim == 1 else st.reshape(tr.shape)
            per[m] = (tr, st)
        n_img = max(len(tr) for tr, _ in per.values())
        xmax, positive, kinds_drawn = 0.0, True, set()
        for g in trace_groups(per, upstream):
            m = g["method"]
            tr, st = per[m]
            if st is None:
                no_steps = True
                st = np.broadcast_to(np.arange(tr.shape[1], dtype=float), tr.shape)
            col = method_color(m)
            rk = np.asarray((kinds or {}).get((t, m), ["real"] * len(tr)), dtype=object)
            if len(rk) != len(tr):
                raise ValueError(f"optimisation_traces: {len(rk)} kinds for {len(tr)} traces of {m} on {t}")
            present = [k for k in KIND_STYLE if k in set(rk)]
            for row, srow, k in zip(tr, st, rk):
                ok = np.isfinite(row) & np.isfinite(srow)
                if ok.any():
                    ax.plot(srow[ok], row[ok], color=col, alpha=0.18, lw=0.6, gid=m, ls=KIND_STYLE[k]["ls"])
                    positive &= bool(np.all(row[ok] > 0))
            # the columns are the same iterations for every image: take the fullest row's steps
            x = st[np.argmax(np.isfinite(st).sum(1))]
            for k in present:
                fin = np.where(np.isfinite(tr), tr, np.nan)[rk == k]
                cols = np.isfinite(fin).any(0) & np.isfinite(x)
                if not cols.any():
                    continue
                with np.errstate(all="ignore"):
                    med = np.nanmedian(fin[:, cols], axis=0)
                label = m
                if g["shared_by"]:
                    label += f" (also {', '.join(g['shared_by'])})"
                if g["starts_from"]:
                    label += f"\n  started from {g['starts_from']}'s result"
                # one legend entry per optimisation; the line style says the kind
                ax.plot(x[cols], med, color=col, lw=1.9, label=label if k == present[0] else "_nolegend_", gid=m,
                        ls=KIND_STYLE[k]["ls"])
                xmax = max(xmax, float(np.nanmax(x[cols])))
                kinds_drawn.add(k)
        if logy and positive:
            ax.set_yscale("log")
        ax.set_xlim(0, xmax or 1)
        ax.set_title(f"{t} ({n_img} images)", fontsize=9)
        ax.set_xlabel("recorded point (no iteration numbers stored)" if no_steps else "iteration", fontsize=8)
        ax.set_ylabel("‖y − A x‖²  (measurement loss)", fontsize=8)
        ax.tick_params(labelsize=7.5)
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if len(kinds_drawn) > 1:      # the line style says the kind: one key entry per kind
            from matplotlib.lines import Line2D

            for k in (k for k in KIND_STYLE if k in kinds_drawn):
                handles.append(Line2D([], [], color="gray", lw=1.9, ls=KIND_STYLE[k]["ls"]))
                labels.append(KIND_STYLE[k]["label"])
        ax.legend(handles, labels, fontsize=6.5, title="median over images", title_fontsize=6.5)
    for j in range(len(tasks), nrow * ncol):
        axes[j // ncol, j % ncol].axis("off")
    fig.suptitle(title or "Optimisation traces: measurement loss along each optimisation", fontsize=10)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- IAGAN Fig. 2
_CS_GAUSSIAN = re.compile(r"^cs_gaussian_(?P<ratio>[0-9.]+)$")


def cs_ratio_tasks(tasks) -> dict:
    """Noiseless Gaussian compressed-sensing tasks of a run: name -> m/n."""
    out = {}
    for t in tasks:
        m = _CS_GAUSSIAN.match(str(t))
        if m:
            out[t] = float(m["ratio"])
    return out


def cs_mse_curve(per_image, methods: list[str] | None = None, title: str = "") -> Figure:
    """IAGAN Fig. 2: reconstruction MSE (mean over images, data range 1) against
    the compression ratio m/n of noiseless Gaussian compressed sensing, one
    curve per method with a band between the 25th and 75th percentiles of the
    per-image MSE.  ``per_image``: the per-image metric rows (task, method, mse,
    optionally kind): real photos solid, in-range faces dashed (IAGAN's curve is
    over real CelebA faces)."""
    fig = _figure((6.4, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    ratios = cs_ratio_tasks(per_image["task"].unique()) if per_image is not None and len(per_image) else {}
    if len(ratios) < 2:
        ax.axis("off")
        ax.text(0.5, 0.5, "needs noiseless cs_gaussian_<m/n> tasks at two or more ratios",
                ha="center", va="center", fontsize=9)
        fig.suptitle(title or "Reconstruction MSE vs m/n", fontsize=10)
        return fig
    df = per_image[per_image["task"].isin(list(ratios))].copy()
    df["ratio"] = df["task"].map(ratios)
    present = list(dict.fromkeys(df["method"]))
    kinds = _kinds_in(df, "kind")
    for kind in kinds:
        st = KIND_STYLE[kind]
        dk = _kind_rows(df, "kind", kind)
        for m in _ordered(present, methods):
            d = dk[(dk["method"] == m) & np.isfinite(dk["mse"].astype(float))]
            if d.empty:
                continue
            g = d.groupby("ratio")["mse"]
            r = np.array(sorted(g.groups))
            mean = g.mean().reindex(r).to_numpy(float)
            lo, hi = g.quantile(0.25).reindex(r).to_numpy(float), g.quantile(0.75).reindex(r).to_numpy(float)
            color = method_color(m)
            label = m if len(kinds) == 1 else f"{m}, {st['label']}"
            ax.plot(r, mean, marker="o", ms=3.5, color=color, label=label, gid=m, ls=st["ls"],
                    mfc=color if st["filled"] else "white")
            ax.fill_between(r, lo, hi, color=color, alpha=0.15 if st["filled"] else 0.07, lw=0, gid=m)
    ax.set_yscale("log")
    ax.set_xlabel("compression ratio m/n")
    ax.set_ylabel("reconstruction MSE (mean over images)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, title="band: 25th-75th percentile", title_fontsize=7)
    ax.set_title(title or "Compressed sensing, Gaussian A: MSE vs m/n (IAGAN Fig. 2)", fontsize=10)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- reading artifacts
def observation_image(y, task_name: str, image_size: int, seed: int = 0) -> np.ndarray:
    """The observation shown as a picture: ``y`` itself when it is an image
    (masked, grey, low-resolution, noisy, blurred), else ``A_input(y)`` (e.g. the
    zero-filled inverse of compressed-sensing measurements; ``seed`` is the
    experiment's, which fixes a random operator); clipped to [0, 1]."""
    import torch

    y = torch.as_tensor(np.asarray(y))
    if y.ndim == 4 and y.shape[1] in (1, 3) and y.shape[-1] == y.shape[-2]:
        return y.clamp(0, 1).numpy()
    from .tasks import make_task

    return make_task(task_name, image_size, seed).op.A_input(y).clamp(0, 1).numpy()


def pick_images(ids, k: int) -> list[int]:
    """``k`` indices spread evenly over the split (first and last included)."""
    n = len(ids)
    if n == 0 or k <= 0:
        return []
    return sorted(set(np.linspace(0, n - 1, min(k, n)).round().astype(int).tolist()))


def load_qualitative(data_path, corrupt_paths: dict, shard_paths: dict, methods: list[str],
                     image_size: int, k: int = 3, not_applicable=(), metric_csvs: dict | None = None,
                     seed: int = 0):
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
        inputs[task] = observation_image(d["y"][[pos[i] for i in chosen]], task, image_size, seed)
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


def load_trace_ids(shard_paths: dict) -> dict:
    """(task, method) -> the image ids of the rows :func:`load_traces` returns
    (same shards, same order)."""
    out = {}
    for (task, m), paths in shard_paths.items():
        ids = []
        for p in paths:
            with np.load(p, allow_pickle=False) as f:
                if "extra_trace" in f.files:
                    ids += [str(i) for i in f["ids"]]
        if ids:
            out[(task, m)] = ids
    return out


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
