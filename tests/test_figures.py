"""Report figures read at a glance: checks on the matplotlib objects, from a
small synthetic metrics set and synthetic restore artifacts (no workflow run).

* traces: the x-axis runs over the configured iterations of each optimisation
  (read from the stored ``trace_step``), one curve per optimisation (a method
  that post-processes another's result is named, not drawn again);
* no two legend entries draw identical data; no two tick labels overlap
  (their rendered bounding boxes);
* a method has one colour in every figure, a task one marker;
* every figure caption states the experiment, the number of images, the data
  protocol and the prior.
"""

from __future__ import annotations

import itertools
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.colors import to_hex

from ganrestore import figures as F
from ganrestore.methods.base import Restoration
from ganrestore.methods.gan_core import trace_steps
from ganrestore.pipeline import save_restoration

ROOT = Path(__file__).resolve().parents[1]

# The synthetic run: a noiseless and a noisy task; per optimising method its
# configured iterations per task and trace interval (IAGAN halves on noisy tasks).
TASKS = ["sr4", "denoise_sigma0.1"]
ITERATIONS = {"yeh": {"sr4": 140, "denoise_sigma0.1": 140},
              "csgm": {"sr4": 150, "denoise_sigma0.1": 150},
              "iagan": {"sr4": 60, "denoise_sigma0.1": 30}}
EVERY = {"yeh": 30, "csgm": 10, "iagan": 10}          # 140 is no multiple of 30: the last step is kept
DERIVED = {"yeh_blend": "yeh", "csgm_bp": "csgm", "iagan_bp": "iagan"}   # post-processing, same trace
UPSTREAM = {"yeh": None, "csgm": None, "iagan": "csgm", **DERIVED}
GAN = ["yeh", "yeh_blend", "csgm", "csgm_bp", "iagan", "iagan_bp"]
PLUGIN = "my_plugin_restorer"                          # a method no palette knows
ALL_METHODS = ["input", "bicubic", "tv", "lowrank", "sparse", *GAN, PLUGIN]
SHARDS = [["a", "b", "c"], ["d", "e"]]
N_IMAGES = sum(len(s) for s in SHARDS)


@pytest.fixture(scope="module")
def restore_dir(tmp_path_factory):
    """restore/<task>/<method>/s*.npz as the workflow writes them (save_restoration)."""
    root = tmp_path_factory.mktemp("restore")
    rng = np.random.default_rng(1)
    shards = {}
    for task in TASKS:
        for k, ids in enumerate(SHARDS):
            B = len(ids)
            extras = {}
            for m in ("yeh", "csgm", "iagan"):
                st = np.asarray(trace_steps(ITERATIONS[m][task], EVERY[m]))
                tr = rng.uniform(50, 100, (B, 1)) * np.exp(-st / 40.0)[None] + rng.uniform(0, 1, (B, len(st)))
                extras[m] = {"z": rng.normal(size=(B, 4)).astype(np.float32), "trace": tr.astype(np.float32),
                             "trace_step": np.tile(st, (B, 1))}
            for m in GAN:
                base = DERIVED.get(m, m)
                res = Restoration(torch.zeros(B, 3, 4, 4), {"diverged": np.zeros(B, bool)},
                                  {key: v.copy() for key, v in extras[base].items()})
                p = root / task / m / f"s{B}-{k:03d}.npz"
                p.parent.mkdir(parents=True, exist_ok=True)
                save_restoration(p, res, ids, {})
                shards.setdefault((task, m), []).append(p)
    return shards


@pytest.fixture(scope="module")
def traces_fig(restore_dir):
    return F.optimisation_traces(F.load_traces(restore_dir), steps=F.load_traces(restore_dir, key="trace_step"),
                                 tasks=TASKS, methods=GAN)


@pytest.fixture(scope="module")
def metrics():
    """Per-image and aggregated metrics of every method on every task (bicubic
    on sr4 only, two failed images)."""
    rng = np.random.default_rng(2)
    rows = []
    for t in TASKS:
        for m in ALL_METHODS:
            if m == "bicubic" and t != "sr4":
                continue
            for j in range(N_IMAGES):
                rows.append({"task": t, "method": m, "image_id": str(j), "psnr": rng.uniform(15, 30),
                             "lpips": rng.uniform(0.05, 0.5)})
    per = pd.DataFrame(rows)
    per.loc[(per["method"] == "iagan_bp") & (per["image_id"] == "0"), ["psnr", "lpips"]] = np.nan
    per.loc[(per["method"] == PLUGIN) & (per["image_id"] == "1"), ["psnr", "lpips"]] = np.nan
    aggs = per.groupby(["task", "method"], sort=False)[["psnr", "lpips"]].mean().reset_index()
    aggs = aggs.rename(columns={"psnr": "psnr_mean", "lpips": "lpips_mean"})
    aggs["psnr_ci95"] = 1.0
    aggs["lpips_ci95"] = 0.02
    return per, aggs


@pytest.fixture(scope="module")
def figures(metrics, traces_fig):
    per, aggs = metrics
    rng = np.random.default_rng(3)
    qual = F.qualitative_grid(rng.random((2, 3, 8, 8)), {t: rng.random((2, 3, 8, 8)) for t in TASKS},
                              {t: {m: rng.random((2, 3, 8, 8)) for m in ALL_METHODS} for t in TASKS},
                              ALL_METHODS, ids=["a", "b"])
    return {"qualitative": qual,
            "perception_distortion": F.perception_distortion(aggs, per_image=per, tasks=TASKS, methods=ALL_METHODS),
            "psnr_distributions": F.psnr_distributions(per, methods=ALL_METHODS, tasks=TASKS),
            "traces": traces_fig}


def _panels(fig):
    """task -> its axes (the panel title starts with the task name)."""
    return {t: ax for ax in fig.axes for t in TASKS if ax.get_title().startswith(t)}


# ----------------------------------------------------------------------------- traces
def test_traces_span_the_configured_iterations_of_each_optimisation(traces_fig):
    panels = _panels(traces_fig)
    assert set(panels) == set(TASKS)
    for t, ax in panels.items():
        drawn = {}
        for line in ax.get_lines():
            m = line.get_gid()
            x = np.asarray(line.get_xdata(), float)
            drawn.setdefault(m, []).append((x.min(), x.max()))
        # one optimisation per base method, nothing for the post-processing ones
        assert set(drawn) == set(ITERATIONS)
        for m, spans in drawn.items():
            # every image's curve and the median run from 0 to the configured iterations
            assert len(spans) == N_IMAGES + 1
            assert all(lo == 0 and hi == ITERATIONS[m][t] for lo, hi in spans), (t, m, spans)
        assert ax.get_xlim() == (0, max(ITERATIONS[m][t] for m in ITERATIONS))
        assert ax.get_xlabel() == "iteration"


def test_traces_draw_one_curve_per_optimisation_and_name_the_derived_methods(traces_fig, restore_dir):
    for t, ax in _panels(traces_fig).items():
        handles, texts = ax.get_legend_handles_labels()      # the drawn lines the legend names
        assert texts == [x.get_text() for x in ax.get_legend().get_texts()]
        # distinct optimisations in the data of this task
        stored = {m: np.concatenate([np.load(p)["extra_trace"] for p in restore_dir[(t, m)]]) for m in GAN}
        distinct = []
        for m in GAN:
            if not any(np.array_equal(stored[m], stored[d]) for d in distinct):
                distinct.append(m)
        assert len(handles) == len(distinct)
        # no two legend entries share identical data
        for a, b in itertools.combinations(handles, 2):
            assert not np.array_equal(a.get_xydata(), b.get_xydata())
        # each derived method is named in its base's entry; iagan says where it starts
        for d, base in DERIVED.items():
            assert [s for s in texts if d in s and s.startswith(base)], (d, texts)
        assert any(s.startswith("iagan") and "csgm" in s for s in texts)


def test_traces_without_iteration_numbers_say_so(restore_dir):
    fig = F.optimisation_traces(F.load_traces(restore_dir), upstream=UPSTREAM)
    assert all(ax.get_xlabel().startswith("recorded point") for ax in _panels(fig).values())


def test_trace_groups_name_the_base_whatever_the_order():
    a, b = np.arange(6.0).reshape(2, 3), np.ones((2, 3))
    st = np.tile(np.arange(3.0), (2, 1))
    groups = F.trace_groups({"csgm_bp": (a, st), "iagan": (b, st), "csgm": (a.copy(), st)}, UPSTREAM)
    assert [(g["method"], g["shared_by"], g["starts_from"]) for g in groups] == [
        ("csgm", ["csgm_bp"], None), ("iagan", [], "csgm")]


# ----------------------------------------------------------------------------- legends, tick labels
def _legends(ax):
    return [leg for leg in [ax.get_legend(), *ax.artists] if leg is not None and hasattr(leg, "legend_handles")]


def test_no_two_legend_entries_share_identical_data(figures):
    for name, fig in figures.items():
        for ax in fig.axes:
            # entries naming drawn artists: no two draw the same data
            drawn, _ = ax.get_legend_handles_labels()
            for a, b in itertools.combinations([h for h in drawn if hasattr(h, "get_xydata")], 2):
                assert not np.array_equal(a.get_xydata(), b.get_xydata()), name
            # entries as the reader sees them: no two look alike
            for leg in _legends(ax):
                looks = [(to_hex(h.get_color()), h.get_marker(), h.get_linestyle()) for h in leg.legend_handles]
                assert len(set(looks)) == len(looks), (name, looks)


def test_tick_labels_and_titles_do_not_overlap(figures):
    for name, fig in figures.items():
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        for ax in fig.axes:
            if not ax.get_visible() or not ax.axison:
                continue
            for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
                boxes = [(t.get_text(), t.get_window_extent(r)) for t in labels if t.get_visible() and t.get_text()]
                for (ta, a), (tb, b) in itertools.combinations(boxes, 2):
                    assert not a.overlaps(b), f"{name}: tick labels {ta!r} and {tb!r} overlap"
        # no tick label runs into another panel's tick labels or title
        texts = [(ax, t) for ax in fig.axes if ax.axison
                 for t in [*ax.get_xticklabels(), ax.title, ax._left_title] if t.get_visible() and t.get_text()]
        for (xa, a), (xb, b) in itertools.combinations(texts, 2):
            if xa is not xb:
                assert not a.get_window_extent(r).overlaps(b.get_window_extent(r)), \
                    f"{name}: {a.get_text()!r} and {b.get_text()!r} overlap"


def test_psnr_distributions_count_failures_and_show_every_method(figures):
    fig = figures["psnr_distributions"]
    for ax in _panels(fig).values():
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert all(s.replace("\n", "").startswith(m) for s, m in zip(labels, ALL_METHODS, strict=True))
        assert any(s.startswith("iagan_bp") and "1 failed" in s for s in labels)
        assert all(t.get_rotation() == 0 for t in ax.get_xticklabels())


# ----------------------------------------------------------------------------- colours, markers
def _colours(fig) -> dict:
    out = {}
    for ax in fig.axes:
        arts = list(ax.get_lines()) + list(ax.collections)
        for leg in _legends(ax):
            arts += list(leg.legend_handles)
        for a in arts:
            m = a.get_gid()
            if not m:
                continue
            c = a.get_color() if hasattr(a, "get_xydata") else a.get_facecolor()[0]
            out.setdefault(m, set()).add(to_hex(c))
    return out


def test_a_method_has_one_colour_in_every_figure(figures, metrics):
    seen: dict[str, set] = {}
    for name in ("perception_distortion", "psnr_distributions", "traces"):
        for m, cs in _colours(figures[name]).items():
            seen.setdefault(m, set()).update(cs)
    assert set(ALL_METHODS) <= set(seen)
    assert all(len(cs) == 1 for cs in seen.values()), seen
    # ... and different methods differ
    assert len({next(iter(cs)) for cs in seen.values()}) == len(seen)
    # a plugin method keeps its colour whatever else is plotted
    per, _ = metrics
    alone = per[per["method"].isin([PLUGIN, "tv"])]
    assert _colours(F.psnr_distributions(alone))[PLUGIN] == seen[PLUGIN]


def test_one_marker_per_task(figures, metrics):
    _, aggs = metrics
    ax = figures["perception_distortion"].axes[0]
    task_leg = ax.get_legend()
    marker = {t.get_text(): h.get_marker() for t, h in zip(task_leg.get_texts(), task_leg.legend_handles)}
    assert set(marker) == set(TASKS) and len(set(marker.values())) == len(TASKS)
    xy_task = {(round(r.lpips_mean, 9), round(r.psnr_mean, 9)): r.task for r in aggs.itertuples()}
    n = 0
    for line in ax.get_lines():
        xy = line.get_xydata()
        if line.get_gid() and len(xy) == 1:
            key = (round(float(xy[0, 0]), 9), round(float(xy[0, 1]), 9))
            assert line.get_marker() == marker[xy_task[key]]
            n += 1
    assert n == len(aggs)


# ----------------------------------------------------------------------------- captions
def _render(path: Path, params) -> str:
    """The caption as `snakemake --report` renders it (Jinja with snakemake's
    settings, then reStructuredText to HTML)."""
    from docutils.core import publish_parts
    from jinja2 import Environment

    text = Environment(trim_blocks=True, lstrip_blocks=True).from_string(path.read_text()).render(
        snakemake=types.SimpleNamespace(params=params, config={}))
    return publish_parts(text, writer="html", settings_overrides={"report_level": 5})["body"]


@pytest.mark.parametrize("name", ["qualitative", "perception_distortion", "psnr_distributions", "traces"])
def test_every_caption_states_experiment_images_protocol_and_prior(name):
    info = {"name": "synthetic_exp", "n_test": 37, "source": "celeba", "tasks": TASKS, "methods": ALL_METHODS,
            "seed": 5, "image_size": 64, "lpips": True, "prior_methods": GAN,
            "prior": {"arch": "dcgan", "resolution": 64, "data": "celeba", "width": 64}}
    traced = [{"method": m, "iterations": ITERATIONS[m],
               "iterations_text": f"{ITERATIONS[m]['sr4']} iterations", "restarts": 2, "trace_every": EVERY[m],
               "starts_from": UPSTREAM[m], "halved_on": ["denoise_sigma0.1"] if m == "iagan" else [],
               "shared_by": [d for d, b in DERIVED.items() if b == m]} for m in ITERATIONS]
    figures = {"data": "CelebA official test partition, crop protocol dcgan64_xyz", "upstream": UPSTREAM,
               "traced": traced}
    html = _render(ROOT / "report" / f"figure_{name}.rst",
                   types.SimpleNamespace(info=info, figures=figures, k=3))
    assert "System Message" not in html and "{{" not in html and "{%" not in html
    for s in ("synthetic_exp", "37 test images", "crop protocol dcgan64_xyz", "DCGAN 64×64", "width 64",
              "trained on celeba", "140 iterations", "150 iterations"):
        assert s in html, (name, s)
    if name == "traces":
        for d, base in DERIVED.items():
            assert d in html and f"{base}'s result" in html, (d, base)
        assert "iagan does not start from a random latent" in html and "ẑ" in html
        assert "half as many on the noisy tasks" in html
    # without a prior (no GAN method) the captions say nothing of one
    info_np = {**info, "prior": None, "prior_methods": []}
    html = _render(ROOT / "report" / f"figure_{name}.rst",
                   types.SimpleNamespace(info=info_np, figures={**figures, "traced": []}, k=3))
    assert "GAN prior" not in html and "37 test images" in html


def test_cs_mse_curve_plots_mean_mse_against_the_ratio():
    """IAGAN Fig. 2: x = the ratios of the noiseless Gaussian CS tasks, y = mean
    per-image MSE per method; noisy CS and other tasks are left out."""
    import pandas as pd

    from ganrestore.figures import cs_mse_curve, cs_ratio_tasks, method_color

    rows = []
    rng = np.random.default_rng(0)
    for t, r in [("cs_gaussian_0.05", 0.05), ("cs_gaussian_0.1", 0.1), ("cs_gaussian_0.3", 0.3)]:
        for m, level in [("csgm", 0.02), ("iagan", 0.01 * (1 - r))]:
            for i in range(4):
                rows.append({"task": t, "method": m, "image_id": str(i), "mse": level * (1 + 0.1 * rng.random())})
    rows.append({"task": "cs_gaussian_0.2_noise0.05", "method": "csgm", "image_id": "0", "mse": 9.0})
    rows.append({"task": "sr4", "method": "csgm", "image_id": "0", "mse": 9.0})
    df = pd.DataFrame(rows)
    assert cs_ratio_tasks(df["task"].unique()) == {"cs_gaussian_0.05": 0.05, "cs_gaussian_0.1": 0.1,
                                                   "cs_gaussian_0.3": 0.3}
    fig = cs_mse_curve(df, methods=["csgm", "iagan"])
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert set(lines) == {"csgm", "iagan"}
    for m, ln in lines.items():
        x, y = ln.get_data()
        assert list(x) == [0.05, 0.1, 0.3]
        want = df[(df.method == m) & df.task.isin(["cs_gaussian_0.05", "cs_gaussian_0.1", "cs_gaussian_0.3"])]
        want = want.groupby("task")["mse"].mean().sort_index(key=lambda s: s.str.len() * 0 + s.map(
            {"cs_gaussian_0.05": 0, "cs_gaussian_0.1": 1, "cs_gaussian_0.3": 2}))
        np.testing.assert_allclose(y, want.to_numpy())
        assert ln.get_color() == method_color(m)
    assert ax.get_yscale() == "log"
    # one ratio only: the figure says what it needs instead of a misleading curve
    one = cs_mse_curve(df[df.task == "cs_gaussian_0.1"])
    assert any("two or more ratios" in t.get_text() for t in one.axes[0].texts)


# ----------------------------------------------------------------------------- real photos and in-range faces
@pytest.fixture(scope="module")
def kinds_metrics():
    """Per-image metrics of 6 real photos and 3 in-range faces (kind column), and
    the aggregates per kind (faces column, with an 'all' row that is not drawn)."""
    rng = np.random.default_rng(5)
    rows = []
    for t in ["cs_gaussian_0.05", "cs_gaussian_0.1"]:
        for m in ["csgm", "iagan"]:
            for kind, n, level in (("real", 6, 20.0), ("in_range", 3, 27.0)):
                for j in range(n):
                    p = level + rng.normal()
                    rows.append({"task": t, "method": m, "image_id": f"{kind}-{j}", "kind": kind, "psnr": p,
                                 "mse": 10 ** (-p / 10), "lpips": rng.uniform(0.05, 0.5)})
    per = pd.DataFrame(rows)
    aggs = []
    for (t, m, k), g in per.groupby(["task", "method", "kind"], sort=False):
        aggs.append({"task": t, "method": m, "faces": {"real": "real", "in_range": "in-range"}[k],
                     "psnr_mean": g.psnr.mean(), "lpips_mean": g.lpips.mean(), "psnr_ci95": 1.0, "lpips_ci95": 0.02})
    for (t, m), g in per.groupby(["task", "method"], sort=False):
        aggs.append({"task": t, "method": m, "faces": "all", "psnr_mean": g.psnr.mean(), "lpips_mean": g.lpips.mean()})
    return per, pd.DataFrame(aggs)


def test_perception_distortion_draws_in_range_means_hollow(kinds_metrics):
    per, aggs = kinds_metrics
    fig = F.perception_distortion(aggs, per_image=per)
    ax = fig.axes[0]
    means = [ln for ln in ax.get_lines() if ln.get_gid() in ("csgm", "iagan")]   # error-bar centres, not caps
    hollow = [ln for ln in means if ln.get_markerfacecolor() in ("white", "w") or to_hex(ln.get_markerfacecolor())
              == "#ffffff"]
    assert len(means) == 8 and len(hollow) == 4          # 2 tasks x 2 methods x (real, in-range); 'all' not drawn
    want = aggs[aggs.faces == "in-range"].psnr_mean.round(9).tolist()
    assert sorted(float(ln.get_ydata()[0]) for ln in hollow) == pytest.approx(sorted(want))
    labels = [t.get_text() for leg in _legends(ax) for t in leg.get_texts()]
    assert "real photos" in labels and "in-range faces" in labels


def test_psnr_distributions_draw_a_box_per_kind(kinds_metrics):
    per, _ = kinds_metrics
    fig = F.psnr_distributions(per)
    gids = [p.get_gid() for ax in fig.axes for p in ax.patches]
    assert sorted(gids) == sorted(f"{m}:{k}" for _ in range(2) for m in ("csgm", "iagan") for k in ("real", "in_range"))
    assert "in-range faces" in fig._suptitle.get_text()
    single = F.psnr_distributions(per[per.kind == "real"])
    assert sorted(p.get_gid() for ax in single.axes for p in ax.patches) == ["csgm:real"] * 2 + ["iagan:real"] * 2
    assert "in-range" not in single._suptitle.get_text()


def test_cs_mse_curve_draws_in_range_faces_dashed(kinds_metrics):
    per, _ = kinds_metrics
    ax = F.cs_mse_curve(per, methods=["csgm", "iagan"]).axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert set(lines) == {f"{m}, {k}" for m in ("csgm", "iagan") for k in ("real photos", "in-range faces")}
    assert lines["iagan, in-range faces"].get_linestyle() == "--" and lines["iagan, real photos"].get_linestyle() == "-"
    want = per[(per.method == "iagan") & (per.kind == "in_range")].groupby("task")["mse"].mean().to_numpy()
    np.testing.assert_allclose(lines["iagan, in-range faces"].get_ydata(), want)


def test_traces_draw_one_median_per_kind(restore_dir):
    traces = F.load_traces(restore_dir)
    ids = F.load_trace_ids(restore_dir)
    assert all(len(ids[k]) == len(traces[k]) for k in traces)
    kinds = {k: ["in_range" if j % 2 else "real" for j in range(len(v))] for k, v in traces.items()}
    fig = F.optimisation_traces(traces, steps=F.load_traces(restore_dir, key="trace_step"), tasks=TASKS,
                                methods=GAN, kinds=kinds)
    ax = _panels(fig)["sr4"]
    medians = [ln for ln in ax.get_lines() if ln.get_linewidth() > 1.5]
    assert len(medians) == 2 * 3                      # yeh, csgm, iagan: one per kind
    assert sorted(ln.get_linestyle() for ln in medians) == ["-"] * 3 + ["--"] * 3
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[-2:] == ["real photos", "in-range faces"] and len(labels) == 3 + 2
    with pytest.raises(ValueError, match="kinds for"):
        F.optimisation_traces(traces, kinds={k: ["real"] for k in traces})
