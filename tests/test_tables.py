"""Paper tables: our aggregates beside the papers' numbers, on a small synthetic frame."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ganrestore import tables as T

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "config" / "paper_tables"


@pytest.fixture(scope="module")
def yeh():
    return T.read_paper_csv(PAPER / "yeh2018_table.csv")


@pytest.fixture(scope="module")
def iagan():
    return T.read_paper_csv(PAPER / "iagan_tables.csv")


def _agg(task, method, psnr_mean, psnr_mse, ssim, lpips=None, n=8):
    d = dict(task=task, method=method, n=n, n_failed=0, psnr_mean=psnr_mean, psnr_of_mean_mse=psnr_mse,
             ssim_mean=ssim)
    if lpips is not None:
        d["lpips_mean"] = lpips
    return d


AGGS = [
    _agg("inpaint_center32", "tv", 22.5, 21.0, 0.75, 0.10),
    _agg("sr4", "tv", 21.0, 20.0, 0.70, 0.20),
    _agg("sr4", "bicubic", 25.5, 25.0, 0.80, 0.20),
    _agg("sr4", "input", 20.5, 20.0, 0.60, 0.40),
    _agg("colorize", "yeh", math.nan, math.nan, math.nan, math.nan),  # every image diverged
    _agg("sr4_noise0.0392", "iagan", 24.0, 23.5, 0.70, 0.15),
    _agg("cs_fourier_0.3_noise0.0392", "input", 18.0, 17.5, 0.5, 0.6),
    _agg("denoise_sigma0.1", "sparse", 23.0, 22.0, 0.8),  # no LPIPS computed
]
PAIRS = [("inpaint_center32", "tv", True), ("colorize", "bicubic", False), ("quantize5", "tv", True)]


def _row(comp, **kw):
    sel = comp
    for k, v in kw.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, (kw, sel)
    return sel.iloc[0]


def test_paper_csvs_are_copied_data(yeh, iagan):
    assert len(yeh) == 20 and set(yeh["method"]) == {"tv", "lowrank", "sparse", "yeh"}
    assert "Yeh" in yeh.attrs["note"]
    assert yeh.loc[(yeh.method == "tv") & (yeh.task == "colorize"), "ssim"].isna().all()
    assert set(iagan["table"]) >= {"1", "2", "3", "4"}
    assert "mean MSE" in iagan.attrs["note"]


def test_noise_parsing():
    assert T.noise_sigma("10/255") == pytest.approx(10 / 255)
    assert T.noise_sigma("0") == 0 and T.noise_sigma(None) == 0 and T.noise_sigma("0.1") == 0.1
    assert T.split_task_noise("sr4_noise0.0392") == ("sr4", 0.0392)
    assert T.split_task_noise("sr4") == ("sr4", 0.0)
    assert T.split_task_noise("deblur_uniform9", {"deblur_uniform9": 0.04}) == ("deblur_uniform9", 0.04)


def test_yeh_comparison_values_and_statuses(yeh):
    comp = T.yeh_comparison(T.aggregates_frame(AGGS, PAIRS), yeh)
    # Yeh et al. report the mean per-image PSNR: ours is psnr_mean, not psnr_of_mean_mse
    r = _row(comp, method="tv", task="inpaint_center32", metric="psnr")
    assert r.paper == 23.10 and r.ours == 22.5 and r["diff"] == pytest.approx(22.5 - 23.10) and r.status == "ok"
    assert r.n == 8
    r = _row(comp, method="tv", task="inpaint_center32", metric="ssim")
    assert r["diff"] == pytest.approx(0.75 - 0.7647)
    # the paper left TV colorization blank; we did not run it either
    r = _row(comp, method="tv", task="colorize", metric="ssim")
    assert math.isnan(r.paper) and r.status == "not run"
    assert _row(comp, method="tv", task="quantize5", metric="psnr").status == "not run"
    assert _row(comp, method="yeh", task="colorize", metric="psnr").status == "failed"
    assert _row(comp, method="lowrank", task="sr4", metric="psnr").status == "not run"
    # our methods the paper lacks are listed with their own rows, 'n/a' where they do not apply
    assert _row(comp, method="bicubic", task="sr4", metric="psnr").ours == 25.5
    assert _row(comp, method="bicubic", task="colorize", metric="psnr").status == "n/a"
    assert not _row(comp, method="bicubic", task="sr4", metric="psnr").in_paper
    # a method with no result on the table's tasks is not listed
    assert "iagan" not in set(comp["method"])


def test_yeh_markdown_layout(yeh):
    comp = T.yeh_comparison(T.aggregates_frame(AGGS, PAIRS), yeh)
    md = T.comparison_markdown(comp, T.YEH_METRICS, "Yeh et al. 2018", "demo.")
    lines = md.splitlines()
    head = next(ln for ln in lines if ln.startswith("| method"))
    assert [c.strip() for c in head.strip("|").split("|")][2:] == [
        "inpaint_center32", "colorize", "sr4", "denoise_sigma0.1", "quantize5"]
    assert "SSIM / PSNR" in md
    tv = lines.index(next(ln for ln in lines if ln.startswith("| TV | paper")))
    assert "0.7647 / 23.10" in lines[tv] and "not reported" in lines[tv]
    assert lines[tv + 1].startswith("|  | ours (n=8) | 0.7500 / 22.50 | not run | 0.7000 / 21.00")
    assert lines[tv + 2].startswith("|  | ours − paper | −0.0147 / −0.60 | — | +0.0352 / −0.05")
    assert any(ln.startswith("| Bicubic (not in paper) | ours (n=8) |") and "n/a" in ln for ln in lines)
    assert any(ln.startswith("| Yeh et al. | paper") for ln in lines)
    assert "failed" in md
    assert "nan" not in md.lower()
    n_cols = head.count("|")
    assert all(ln.count("|") == n_cols for ln in lines if ln.startswith("|"))


def test_iagan_uses_psnr_of_mean_mse_and_matches_noise(iagan):
    comp = T.iagan_comparison(AGGS, iagan, "3", dataset="celeba")
    r = _row(comp, method="iagan", dataset="celeba", task="sr4", metric="psnr")
    assert r.our_task == "sr4_noise0.0392" and r.ours == 23.5 and r.paper == 25.54
    assert _row(comp, method="iagan", dataset="celeba", task="sr4", metric="lpips")["diff"] == pytest.approx(0.15 - 0.133)
    # ours go in the configured dataset's columns only
    assert _row(comp, method="iagan", dataset="celebahq", task="sr8", metric="psnr").status == "not run"
    # the noiseless sr4 result does not fill the noisy table's column
    assert _row(comp, method="bicubic", dataset="celeba", task="sr4", metric="psnr").status == "not run"
    comp2 = T.iagan_comparison(AGGS, iagan, "2", dataset="celeba")
    assert _row(comp2, method="bicubic", dataset="celeba", task="sr4", metric="psnr").ours == 25.0
    comp_hq = T.iagan_comparison(AGGS, iagan, "3", dataset="celebahq")
    assert _row(comp_hq, method="iagan", dataset="celeba", task="sr4", metric="psnr").status == "not run"


def test_iagan_aliases_and_not_computed(iagan):
    comp = T.iagan_comparison(AGGS, iagan, "1")
    r = _row(comp, method="naive_ifft", dataset="celeba", task="cs_fourier_0.3", metric="psnr")
    assert r.our_method == "input" and r.ours == 17.5
    md = T.comparison_markdown(comp, T.IAGAN_METRICS, "IAGAN Table 1")
    assert "| Naive IFFT | paper | 19.23 / 0.540 |" in md
    assert "|  | ours [input] (n=8) | 17.50 / 0.600 |" in md
    # a result without LPIPS says so instead of a number
    aggs = [_agg("sr4", "bicubic", 25.5, 25.0, 0.8)]
    c = T.iagan_comparison(aggs, T.read_paper_csv(PAPER / "iagan_tables.csv"), "2")
    assert _row(c, method="bicubic", dataset="celeba", task="sr4", metric="lpips").status == "not computed"
    assert "25.00 / —" in T.comparison_markdown(c, T.IAGAN_METRICS)


def test_empty_results_give_paper_only_table(yeh):
    comp = T.yeh_comparison([], yeh)
    assert set(comp["status"]) == {"not run"}
    md = T.comparison_markdown(comp, T.YEH_METRICS)
    assert md.count("| paper |") == 4 and "ours − paper" in md


def test_latex_is_well_formed(iagan, yeh):
    for comp, mets in ((T.iagan_comparison(AGGS, iagan, "2"), T.IAGAN_METRICS),
                       (T.yeh_comparison(AGGS, yeh), T.YEH_METRICS)):
        tex = T.comparison_latex(comp, mets, "Caption with under_score & 50%.", "tab:x")
        assert tex.count("{") - tex.count(r"\{") == tex.count("}") - tex.count(r"\}")
        spec = re.search(r"\\begin\{tabular\}\{([lc]+)\}", tex).group(1)
        body = [ln for ln in tex.splitlines() if ln.endswith(r"\\")]
        assert body and all(ln.count(" & ") == len(spec) - 1 for ln in body)
        assert r"under\_score \& 50\%" in tex and "nan" not in tex.lower()
        assert r"\emph{not run}" in tex and "$-$" in tex


def test_csv_round_trip_and_write(tmp_path, yeh):
    comp = T.yeh_comparison(T.aggregates_frame(AGGS, PAIRS), yeh)
    paths = T.write_comparison(comp, T.YEH_METRICS, tmp_path / "paper_yeh2018", "Yeh et al.", "demo")
    assert {p.suffix for p in paths.values()} == {".html", ".md", ".csv", ".tex"}
    assert "<table" in paths["html"].read_text()
    back = pd.read_csv(paths["csv"])
    assert list(back.columns) == T.COMPARISON_COLUMNS and len(back) == len(comp)
    r = back[(back.method == "tv") & (back.task == "inpaint_center32") & (back.metric == "psnr")].iloc[0]
    assert r.ours == 22.5 and r.paper == 23.1


def test_aggregates_frame_from_summary_csv(tmp_path):
    rows = T.summary_rows(AGGS[:2], [("inpaint_center32", "tv", True), ("sr4", "tv", True),
                                     ("colorize", "bicubic", False), ("quantize5", "tv", True)])
    p = tmp_path / "summary.csv"
    p.write_text(T.rows_to_csv(rows))
    df = T.aggregates_frame(p)
    st = dict(zip(zip(df.task, df.method), df.status))
    assert st[("inpaint_center32", "tv")] == "ok" and st[("colorize", "bicubic")] == "n/a"
    assert st[("quantize5", "tv")] == "not run"


def test_summary_says_when_method_tasks_left_a_pair_out(tmp_path):
    """A pair that could run but that method_tasks leaves out is not 'n/a' (the
    method applies); it reads 'not run (left out by method_tasks)', and as
    'not run' in the frame the paper tables use."""
    pairs = [("inpaint_center32", "tv", True), ("sr4", "bicubic", False), ("colorize", "bicubic", False)]
    rows = T.summary_rows(AGGS[:1], pairs, left_out=[("sr4", "bicubic")])
    st = {(r["task"], r["method"]): r["status"] for r in rows}
    assert st[("sr4", "bicubic")] == T.LEFT_OUT == "not run (left out by method_tasks)"
    assert st[("colorize", "bicubic")] == "n/a (method does not apply)"
    p = tmp_path / "summary.csv"
    p.write_text(T.rows_to_csv(rows))
    df = T.aggregates_frame(p)
    got = dict(zip(zip(df.task, df.method), df.status))
    assert got[("sr4", "bicubic")] == "not run" and got[("colorize", "bicubic")] == "n/a"


# ----------------------------------------------------------------------------- report figures (smoke)
def test_report_figures_write_png_and_pdf(tmp_path):
    import numpy as np
    from matplotlib.image import imread

    from ganrestore import figures as F
    from ganrestore.io import save_artifact

    rng = np.random.default_rng(0)
    real = rng.random((2, 3, 16, 16))
    bad = rng.random((2, 3, 16, 16))
    bad[1] = np.nan
    fig = F.qualitative_grid(real, {"sr4": rng.random((2, 3, 4, 4)), "colorize": rng.random((2, 1, 16, 16))},
                             {"sr4": {"tv": bad}, "colorize": {"bicubic": None}}, ["tv", "bicubic"],
                             ids=["a", "b"], scores={"sr4": {"tv": np.array([20.0, np.nan])}})
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert {"diverged", "n/a", "not run"} <= set(texts)
    paths = F.save_figure(fig, tmp_path / "qual")
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert imread(paths[0]).shape[0] > 100 and paths[1].read_bytes().startswith(b"%PDF")

    per = pd.DataFrame({"task": ["sr4"] * 4, "method": ["tv", "tv", "csgm", "csgm"],
                        "psnr": [20.0, np.nan, 22.0, 23.0], "lpips": [0.3, np.nan, 0.2, 0.1]})
    aggs = pd.DataFrame({"task": ["sr4", "sr4"], "method": ["tv", "csgm"], "psnr_mean": [20.0, 22.5],
                         "lpips_mean": [0.3, 0.15]})
    for name, f in {"pd": F.perception_distortion(aggs, per_image=per), "dist": F.psnr_distributions(per),
                    "empty_pd": F.perception_distortion(pd.DataFrame()),
                    "no_trace": F.optimisation_traces({})}.items():
        assert all(p.stat().st_size > 1000 for p in F.save_figure(f, tmp_path / name))
    assert "1 failed" in " ".join(t.get_text() for ax in F.psnr_distributions(per).axes
                                  for t in ax.get_xticklabels())

    # traces of different lengths from two shards are NaN-padded and stacked
    for k, T_ in enumerate((5, 3)):
        save_artifact(tmp_path / f"s{k}.npz", {"x_hat": np.zeros((2, 3, 4, 4), np.float32),
                                               "ids": np.array(["a", "b"]),
                                               "extra_trace": np.ones((2, T_))})
    tr = F.load_traces({("sr4", "csgm"): [tmp_path / "s0.npz", tmp_path / "s1.npz"]})
    assert tr[("sr4", "csgm")].shape == (4, 5) and np.isnan(tr[("sr4", "csgm")][2:, 3:]).all()
    assert F.save_figure(F.optimisation_traces(tr), tmp_path / "traces")[0].exists()
    assert F.pick_images(list("abcdefgh"), 3) == [0, 4, 7]


def test_colorize_note_says_how_each_configured_baseline_colourises():
    from ganrestore.tables import colorize_note

    note = colorize_note({"tv": "gray", "lowrank": "generic", "sparse": None})
    assert note.startswith("Colourisation")
    assert "TV restricted to grey images" in note
    assert "green channel" in note and "colour atoms" in note
    only_tv = colorize_note({"tv": "generic"})
    assert "low-rank" not in only_tv and "sparse" not in only_tv and "luma operator" in only_tv
    assert colorize_note({}) == ""


# ----------------------------------------------------------------------------- setting markers
YEH_PRIOR = {"arch": "dcgan", "resolution": 64, "data": "celeba", "width": 64}
DEMO_PRIOR = {"arch": "dcgan", "resolution": 64, "data": "gan-face-generate samples", "width": 32}
GAN_METHODS = ["yeh", "csgm", "iagan"]


def _setting(source="celeba", image_size=64, prior=YEH_PRIOR):
    return T.run_setting({"source": source, "image_size": image_size, "prior": prior,
                          "prior_methods": GAN_METHODS, "name": "x"})


def _marked_cells(md):
    """(method label, cell) of every cell of ours that ends in a footnote symbol."""
    out, label = [], ""
    for ln in md.splitlines():
        if not ln.startswith("| ") or ln.startswith(("| method", "|---")):
            continue
        cells = [c.strip() for c in ln.strip("|").split("|")]
        label = cells[0] or label
        out += [(label, cells[1], c) for c in cells[2:] if c.endswith(("†", "‡", "§", "¶"))]
    return out


def test_no_marker_when_the_setting_matches_the_paper(yeh):
    aggs = AGGS + [_agg("inpaint_center32", "yeh", 23.0, 22.0, 0.8)]
    comp = T.yeh_comparison(aggs, yeh, setting=_setting())
    assert set(comp["differs"]) == {""}
    md = T.comparison_markdown(comp, T.YEH_METRICS)
    assert not _marked_cells(md) and "differs from the paper" not in md
    # the slides do not state Yeh et al.'s number of images: n is never compared there
    assert T.setting_differences(T.PAPER_SETTINGS[("yeh2018", "celeba")], _setting(), "tv", 3) == ""


def test_markers_say_exactly_which_settings_differ(yeh):
    aggs = [_agg("inpaint_center32", "tv", 22.5, 21.0, 0.75), _agg("inpaint_center32", "yeh", 23.0, 22.0, 0.8)]
    comp = T.yeh_comparison(aggs, yeh, setting=_setting(source="demo", prior=DEMO_PRIOR))
    md = T.comparison_markdown(comp, T.YEH_METRICS)
    marked = _marked_cells(md)
    # tv: ours and ours - paper on inpainting; yeh likewise; nothing else has a value of ours
    assert [(lab, src) for lab, src, _ in marked] == [("TV", "ours (n=8)"), ("TV", "ours − paper"),
                                                       ("Yeh et al.", "ours (n=8)"), ("Yeh et al.", "ours − paper")]
    tv_sym, yeh_sym = marked[0][2][-1], marked[2][2][-1]
    assert tv_sym != yeh_sym  # the prior only matters to the GAN method
    notes = {ln[0]: ln for ln in md.splitlines() if "differs from the paper" in ln}
    assert set(notes) == {tv_sym, yeh_sym}
    assert "data set demo faces (paper: CelebA)" in notes[tv_sym] and "prior" not in notes[tv_sym]
    assert "image size" not in notes[tv_sym] and "test images" not in notes[tv_sym]
    assert "prior DCGAN 64×64 (width 32) trained on gan-face-generate samples" in notes[yeh_sym]
    assert "(paper: DCGAN 64×64 trained on CelebA)" in notes[yeh_sym]
    # cells without a value of ours are never marked
    assert "not run †" not in md and "not run ‡" not in md


def test_iagan_markers_compare_size_prior_and_number_of_images(iagan):
    began = {"arch": "began", "resolution": 128, "data": "celeba"}
    paper_like = [_agg("sr4", "iagan", 24.0, 23.5, 0.7, 0.1, n=100),
                  _agg("sr4", "bicubic", 25.5, 25.0, 0.8, 0.2, n=100)]
    comp = T.iagan_comparison(paper_like, iagan, "2", setting=_setting(image_size=128, prior=began))
    assert set(comp["differs"]) == {""}
    # 64 px images and 8 test images: every cell of ours is marked (no GAN method in Table 2 here)
    comp = T.iagan_comparison(AGGS, iagan, "2", setting=_setting(prior=began))
    md = T.comparison_markdown(comp, T.IAGAN_METRICS)
    marked = _marked_cells(md)
    assert {lab for lab, _, _ in marked} == {"Bicubic", "Input (A_input y) (not in paper)", "TV (not in paper)"}
    note = next(ln for ln in md.splitlines() if ln.startswith("†"))
    assert "image size 64×64 (paper: 128×128)" in note and "8 test images (paper: 100)" in note
    assert "data set" not in note and "prior" not in note
    comp3 = T.iagan_comparison(AGGS, iagan, "3", setting=_setting(prior=began))
    r = _row(comp3, method="iagan", dataset="celeba", task="sr4", metric="psnr")
    assert r.differs == "image size 64×64 (paper: 128×128); 8 test images (paper: 100)"  # same prior as the paper
    comp3 = T.iagan_comparison(AGGS, iagan, "3", setting=_setting(prior=YEH_PRIOR))
    r = _row(comp3, method="iagan", dataset="celeba", task="sr4", metric="psnr")
    assert "prior DCGAN 64×64 (width 64) trained on CelebA (paper: BEGAN 128×128 trained on CelebA)" in r.differs
    assert _row(comp3, method="iagan", dataset="celebahq", task="sr8", metric="psnr").differs == ""  # not run
    # every format carries the footnote; LaTeX stays well formed
    for text in (T.comparison_html(comp3, T.IAGAN_METRICS), T.comparison_latex(comp3, T.IAGAN_METRICS)):
        assert "differs from the paper" in text
    tex = T.comparison_latex(comp3, T.IAGAN_METRICS)
    assert r"\textdagger{}" in tex and tex.count("{") - tex.count(r"\{") == tex.count("}") - tex.count(r"\}")
    spec = re.search(r"\\begin\{tabular\}\{([lc]+)\}", tex).group(1)
    assert all(ln.count(" & ") == len(spec) - 1 for ln in tex.splitlines() if ln.endswith(r"\\"))


def test_a_result_with_failed_images_is_never_a_normal_cell(yeh):
    """Issue 13: 1 of 8 images flagged (diverged / no progress) -> the cell says so
    instead of the mean of the other 7; the summary status says it too."""
    aggs = [dict(_agg("inpaint_center32", "tv", 22.5, 21.0, 0.75), n_failed=1),
            _agg("sr4", "tv", 21.0, 20.0, 0.70)]
    comp = T.yeh_comparison(aggs, yeh)
    md = T.comparison_markdown(comp, T.YEH_METRICS)
    assert "failed (1 of 8 images)" in md
    assert "22.50" not in md and "21.00" in md
    html = T.comparison_html(comp, T.YEH_METRICS)
    assert '<td class="missing">failed (1 of 8 images)</td>' in html
    rows = T.summary_rows(aggs, [("inpaint_center32", "tv", True), ("sr4", "tv", True)])
    assert rows[0]["status"] == "1 failed" and rows[1]["status"] == "ok"


# ----------------------------------------------------------------------------- real photos and in-range faces
def _kinds_json(task, method, real, in_range=None, n_real=12, n_in=4):
    """An evaluate JSON: pooled keys plus by_kind (real and, when given, in-range)."""
    def one(v, n):
        return {"n": n, "n_failed": 0, "psnr_mean": v[0], "psnr_of_mean_mse": v[0] - 0.2, "ssim_mean": v[1],
                "lpips_mean": v[2]}
    by = {"real": one(real, n_real)}
    if in_range is not None:
        by["in_range"] = one(in_range, n_in)
    pooled = one(tuple(np.mean([b[k] for b in by.values()]) for k in ("psnr_mean", "ssim_mean", "lpips_mean")),
                 sum(b["n"] for b in by.values()))
    return {"task": task, "method": method, **pooled, "by_kind": by}


KJSONS = [_kinds_json("sr4", "tv", (21.0, 0.70, 0.30), (24.0, 0.80, 0.20)),
          _kinds_json("inpaint_center32", "tv", (22.0, 0.75, 0.20), (26.0, 0.85, 0.10))]
KPAIRS = [("inpaint_center32", "tv", True), ("sr4", "tv", True), ("sr4", "bicubic", False)]


def test_summary_has_a_row_per_kind_and_one_for_all():
    rows = T.summary_rows(KJSONS, KPAIRS)
    got = [(r["task"], r["method"], r.get("faces"), r.get("n")) for r in rows]
    assert got == [("inpaint_center32", "tv", "real", 12), ("inpaint_center32", "tv", "in-range", 4),
                   ("inpaint_center32", "tv", "all", 16), ("sr4", "tv", "real", 12), ("sr4", "tv", "in-range", 4),
                   ("sr4", "tv", "all", 16), ("sr4", "bicubic", None, None)]
    assert rows[0]["psnr_mean"] == 22.0 and rows[1]["psnr_mean"] == 26.0 and rows[2]["psnr_mean"] == 24.0
    md = T.rows_to_markdown(rows)
    assert "| sr4 | tv | ok | 4 | in-range | 24.00 ± — |" in md
    assert "| sr4 | bicubic | n/a (method does not apply) |" in md
    assert T.rows_to_csv(rows).splitlines()[0].split(",")[:5] == ["task", "method", "status", "n", "faces"]


def test_summary_of_a_real_only_run_has_no_in_range_or_all_rows():
    real_only = [_kinds_json("sr4", "tv", (21.0, 0.70, 0.30))]
    rows = T.summary_rows(real_only, [("sr4", "tv", True)])
    assert [r["faces"] for r in rows] == ["real"] and rows[0]["n"] == 12
    old = T.summary_rows(AGGS[:1], [("inpaint_center32", "tv", True)])   # a JSON without by_kind: real
    assert [r["faces"] for r in old] == ["real"] and "in-range" not in T.rows_to_markdown(old)
    assert T.kinds_note(real_only, paper=False) == "Every test image is a real photo (n = 12)."
    assert "in-range" not in T.kinds_note(real_only)


def test_paper_tables_compare_the_real_photos_and_show_in_range_faces_apart(yeh):
    real = T.aggregates_frame(T.kind_aggregates(KJSONS, "real"))
    inr = T.aggregates_frame(T.kind_aggregates(KJSONS, "in_range"))
    comp = T.yeh_comparison(real, yeh, in_range=inr)
    r = _row(comp, method="tv", task="inpaint_center32", metric="psnr", faces="real")
    assert r.ours == 22.0 and r["diff"] == pytest.approx(22.0 - 23.10) and r.n == 12
    r = _row(comp, method="tv", task="inpaint_center32", metric="psnr", faces="in_range")
    assert r.ours == 26.0 and math.isnan(r["diff"]) and r.n == 4
    md = T.comparison_markdown(comp, T.YEH_METRICS)
    lines = md.splitlines()
    tv = lines.index(next(ln for ln in lines if ln.startswith("| TV | paper")))
    assert lines[tv + 1].startswith("|  | ours, real photos (n=12) | 0.7500 / 22.00 |")
    assert lines[tv + 2].startswith("|  | ours, real photos − paper | −0.0147 / −1.10 |")
    assert lines[tv + 3].startswith("|  | ours, in-range faces (n=4) | 0.8500 / 26.00 |")
    assert "in-range faces − paper" not in md
    assert list(comp.columns) == T.COMPARISON_COLUMNS
    # a real-only run: the table of before, no in-range rows, no kind in the labels
    md = T.comparison_markdown(T.yeh_comparison(real, yeh, in_range=None), T.YEH_METRICS)
    assert "in-range" not in md and "|  | ours (n=12) | 0.7500 / 22.00 |" in md


def test_iagan_tables_take_the_real_photos_too(iagan):
    js = [_kinds_json("sr4", "bicubic", (25.0, 0.8, 0.2), (28.0, 0.9, 0.1))]
    comp = T.iagan_comparison(T.aggregates_frame(T.kind_aggregates(js, "real")), iagan, "2",
                              in_range=T.aggregates_frame(T.kind_aggregates(js, "in_range")))
    r = _row(comp, method="bicubic", task="sr4", metric="psnr", dataset="celeba", faces="real")
    assert r.ours == pytest.approx(24.8) and r["diff"] == pytest.approx(24.8 - 26.50)
    r = _row(comp, method="bicubic", task="sr4", metric="psnr", dataset="celeba", faces="in_range")
    assert r.ours == pytest.approx(27.8) and math.isnan(r["diff"])


def test_results_table_rows_per_kind():
    df = T.results_table(KJSONS, KPAIRS)
    assert list(df.columns[:4]) == ["task", "method", "faces", "status"]
    got = list(zip(df.task, df.method, df.faces))
    assert got[:3] == [("sr4", "tv", "real"), ("sr4", "tv", "in-range"), ("sr4", "tv", "all")]
    html = T.results_html(KJSONS, KPAIRS)
    assert html.count("<td>in-range</td>") == 2 and "<th>faces</th>" in html
    real_only = T.results_table([_kinds_json("sr4", "tv", (21.0, 0.70, 0.30))])
    assert list(real_only.faces) == ["real"]


def test_summary_csv_is_one_row_per_pair_with_columns_per_kind():
    rows, cols = T.summary_wide(T.summary_rows(KJSONS, KPAIRS))
    assert [(r["task"], r["method"]) for r in rows] == [("inpaint_center32", "tv"), ("sr4", "tv"), ("sr4", "bicubic")]
    r = rows[1]
    assert (r["n"], r["psnr_mean"], r["real_n"], r["real_psnr_mean"], r["in_range_n"], r["in_range_psnr_mean"]) == \
        (16, 22.5, 12, 21.0, 4, 24.0)
    assert "faces" not in cols and cols[:4] == ["task", "method", "status", "n"] and "in_range_lpips_mean" in cols
    back = pd.read_csv(io.StringIO(T.rows_to_csv(rows, cols)))
    assert back.loc[1, "in_range_ssim_mean"] == 0.80 and back.loc[2, "status"] == "n/a (method does not apply)"
    # real photos only: the pooled columns are the real ones, and there is no in-range column
    rows, cols = T.summary_wide(T.summary_rows([_kinds_json("sr4", "tv", (21.0, 0.70, 0.30))], [("sr4", "tv", True)]))
    assert rows[0]["n"] == rows[0]["real_n"] == 12 and not any(c.startswith("in_range") for c in cols)
