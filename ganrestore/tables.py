"""Tables: the workflow's summary of every (task, method), and the papers' layouts.

Every table reports the real photographs and the faces in the generator's range
apart (:mod:`ganrestore.imagekinds`; ``faces`` column / row label), and all of
them together where the table has room (the summary, the table of all results).
The paper-layout tables compare the papers with our **real** photos only (the
papers test on real CelebA faces); the in-range faces get rows of their own,
without a difference to the paper.  A run with real images only (CelebA) has no
in-range rows.
"""

from __future__ import annotations

import csv
import io as _io
import math
import re

from .imagekinds import IN_RANGE, KIND_LABELS, KINDS, REAL

SUMMARY_COLUMNS = ["task", "method", "status", "n", "faces", "n_failed", "psnr_mean", "psnr_ci95",
                   "psnr_of_mean_mse", "ssim_mean", "ssim_ci95", "lpips_mean", "lpips_ci95",
                   "seconds_per_image"]
#: the columns repeated per image kind in the wide summary CSV (``real_psnr_mean``, ...); the wall time
#: stays one pooled column (``seconds_per_image``: timings differ between any two runs, the rest must not)
KIND_COLUMNS = ["n", "n_failed", "psnr_mean", "psnr_ci95", "psnr_of_mean_mse", "ssim_mean", "ssim_ci95",
                "lpips_mean", "lpips_ci95"]
ALL = "all"


def _fmt(v, digits=2):
    if v is None or v == "":
        return "—"
    if isinstance(v, float):
        return "—" if math.isnan(v) else f"{v:.{digits}f}"
    return str(v)


LEFT_OUT = "not run (left out by method_tasks)"


def kinds_of(aggregates) -> list[str]:
    """The image kinds of a run's aggregates (the evaluate JSONs), in table
    order; aggregates without ``by_kind`` (a split without ``z``) are real."""
    seen = set()
    for a in aggregates:
        seen |= set(a.get("by_kind") or {REAL: None})
    return [k for k in KINDS if k in seen]


def kind_aggregates(aggregates, kind: str) -> list[dict]:
    """The aggregates of one image kind (``real``, ``in_range``) or of all images
    (``all``): one dict per (task, method) with the keys of the evaluate JSON
    (``by_kind`` dropped); a (task, method) without images of that kind is left out."""
    out = []
    for a in aggregates:
        base = {k: v for k, v in a.items() if k != "by_kind"}
        by = a.get("by_kind")
        if kind == ALL:
            out.append(base)
        elif by is None:
            if kind == REAL:
                out.append(base)
        elif kind in by:
            out.append({**base, **by[kind]})
    return out


def kind_counts(aggregates) -> dict:
    """``{kind: number of test images}`` of a run (the largest ``n`` of any (task,
    method) per kind)."""
    out = {}
    for k in kinds_of(aggregates):
        ns = [a.get("n") for a in kind_aggregates(aggregates, k) if a.get("n") is not None]
        out[k] = int(max(ns)) if ns else 0
    return out


def kinds_note(aggregates, paper: bool = True) -> str:
    """What a caption says about the image kinds: which images the cells beside
    the paper's are (``paper``), or how the rows are split."""
    c = kind_counts(aggregates)
    r, i = c.get(REAL, 0), c.get(IN_RANGE, 0)
    if paper:
        text = (f"The papers test on real CelebA faces: our cells beside the paper's (and their differences) are "
                f"our {r} real photo{'s' if r != 1 else ''}.")
        if i:
            text += (f" Our {i} in-range face{'s' if i != 1 else ''} (outputs of the prior, whose latent z the "
                     "split stores) have rows of their own ('in-range faces'), not compared with the paper.")
        return text
    if i:
        return f"Rows per image kind: real photos (n = {r}), in-range faces (n = {i}), and all together."
    return f"Every test image is a real photo (n = {r})."


def faces_label(kind: str) -> str:
    return {REAL: "real", IN_RANGE: "in-range", ALL: "all"}.get(kind, kind)


def summary_rows(aggregates: list[dict], pairs: list[tuple[str, str, bool]], left_out=()) -> list[dict]:
    """Rows per configured (task, method); ``pairs`` = (task, method, runs).

    A pair that runs gets one row per image kind (``faces``: real photos,
    in-range faces) and, when the run has both, one for all images together.
    A pair that does not run gets one row, status 'n/a' when the method does not
    apply to the task, or :data:`LEFT_OUT` when it is one of ``left_out`` (it
    could run, but the config's ``method_tasks`` leaves the task out); a pair
    that runs but has no aggregate gets 'missing'.
    """
    kinds = kinds_of(aggregates)
    kinds = kinds + [ALL] if len(kinds) > 1 else kinds or [REAL]
    by_kind = {k: {(a["task"], a["method"]): a for a in kind_aggregates(aggregates, k)} for k in kinds}
    left = {tuple(p) for p in left_out}
    rows = []
    for task, method, applies in pairs:
        if not applies:
            status = LEFT_OUT if (task, method) in left else "n/a (method does not apply)"
            rows.append({"task": task, "method": method, "status": status})
            continue
        have = [(k, by_kind[k].get((task, method))) for k in kinds if (task, method) in by_kind[k]]
        if not have:
            rows.append({"task": task, "method": method, "status": "missing"})
        for k, a in have:
            status = "ok" if not a.get("n_failed") else f"{a['n_failed']} failed"
            rows.append({"status": status, **{c: a.get(c) for c in SUMMARY_COLUMNS if c in a},
                         "task": task, "method": method, "faces": faces_label(k)})
    return rows


def summary_wide(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """The summary rows (:func:`summary_rows`, one per kind) as one row per (task,
    method) for the CSV: the columns of all images together (those of the only
    kind when the run has one), then ``<kind>_<column>`` (:data:`KIND_COLUMNS`) for
    each kind present (``real_psnr_mean``, ``in_range_psnr_mean``, ...); a run with
    real photos only has no in-range column.  Returns ``(rows, columns)``."""
    kinds = [k for k in KINDS if any(r.get("faces") == faces_label(k) for r in rows)]
    out, index = [], {}
    for r in rows:
        key = (r["task"], r["method"])
        if key not in index:
            index[key] = len(out)
            out.append({"task": r["task"], "method": r["method"], "status": r.get("status")})
        w = out[index[key]]
        faces = r.get("faces")
        if faces in (faces_label(ALL), None) or (len(kinds) == 1 and faces == faces_label(kinds[0])):
            w.update({c: r.get(c) for c in SUMMARY_COLUMNS if c in r})
        for k in kinds:
            if faces == faces_label(k):
                w.update({f"{k}_{c}": r.get(c) for c in KIND_COLUMNS})
    cols = [c for c in SUMMARY_COLUMNS if c != "faces"] + [f"{k}_{c}" for k in kinds for c in KIND_COLUMNS]
    return out, cols


def rows_to_csv(rows: list[dict], columns: list[str] = SUMMARY_COLUMNS) -> str:
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({c: ("" if r.get(c) is None else r.get(c)) for c in columns})
    return buf.getvalue()


def rows_to_markdown(rows: list[dict], title: str = "", note: str = "") -> str:
    head = ["task", "method", "status", "n", "faces", "PSNR (dB, mean ± 95% CI)", "PSNR of mean MSE (dB)",
            "SSIM (mean ± 95% CI)", "LPIPS (mean ± 95% CI)", "s / image"]
    out = []
    if title:
        out += [f"# {title}", ""]
    if note:
        out += [note, ""]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r.get("status", "").startswith(("n/a", "missing")):
            cells = [r["task"], r["method"], r["status"]] + ["—"] * (len(head) - 3)
        else:
            cells = [r["task"], r["method"], r["status"], _fmt(r.get("n")), _fmt(r.get("faces")),
                     f"{_fmt(r.get('psnr_mean'))} ± {_fmt(r.get('psnr_ci95'))}",
                     _fmt(r.get("psnr_of_mean_mse")),
                     f"{_fmt(r.get('ssim_mean'), 4)} ± {_fmt(r.get('ssim_ci95'), 4)}",
                     (f"{_fmt(r.get('lpips_mean'), 4)} ± {_fmt(r.get('lpips_ci95'), 4)}"
                      if r.get("lpips_mean") is not None else "not computed"),
                     _fmt(r.get("seconds_per_image"), 3)]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


# =============================================================================
# The papers' tables beside ours
# =============================================================================
#
# Our results enter as *aggregates*: one record per (task, method) with at least
# ``task, method, n, psnr_mean, psnr_of_mean_mse, ssim_mean, lpips_mean`` (the
# JSON that ``pipeline.run_evaluate`` writes).  The papers' numbers come from
# ``config/paper_tables/*.csv``.  Both are joined into one long *comparison*
# frame (one row per paper cell and metric: paper value, ours, ours - paper),
# which is written as CSV and rendered in the paper's layout as Markdown and
# LaTeX: methods as rows (paper / ours / difference), tasks as columns.
#
# PSNR conventions differ between the papers and are kept:
#   * Yeh et al. (ICASSP 2018): mean of per-image PSNR -> our ``psnr_mean``;
#   * IAGAN (arXiv 1906.05284, footnote): PSNR of the mean MSE over the test
#     images, 10 log10(255^2 / mean MSE) -> our ``psnr_of_mean_mse``.

#: Our method that plays a paper baseline's role (paper name -> our name).
PAPER_METHOD_ALIASES = {"naive_ifft": "input", "blurred": "input"}

#: Display names of methods in rendered tables.
METHOD_LABELS = {
    "tv": "TV", "lowrank": "Low-rank", "sparse": "Sparse", "yeh": "Yeh et al.",
    "yeh_lambda0": "Yeh et al., λ = 0 (no D, no z prior)",
    "yeh_blend": "Yeh et al. + blending", "naive_ifft": "Naive IFFT", "blurred": "Blurred input",
    "bicubic": "Bicubic", "dip": "DIP", "csgm": "CSGM", "csgm_bp": "CSGM-BP", "iagan": "IAGAN",
    "iagan_bp": "IAGAN-BP", "input": "Input (A_input y)",
}

#: metric -> (our aggregate column, label, digits) per paper.
YEH_METRICS = {"ssim": ("ssim_mean", "SSIM", 4), "psnr": ("psnr_mean", "PSNR", 2)}
IAGAN_METRICS = {"psnr": ("psnr_of_mean_mse", "PSNR", 2), "lpips": ("lpips_mean", "LPIPS", 3)}

NOT_RUN, NOT_APPLICABLE, NOT_REPORTED, FAILED = "not run", "n/a", "not reported", "failed"
NOT_COMPUTED = "not computed"  # the metric is absent from our aggregates (e.g. no LPIPS weights)

COMPARISON_COLUMNS = ["table", "column", "dataset", "task", "noise", "method", "our_task", "our_method",
                      "metric", "paper", "ours", "diff", "n", "status", "in_paper", "differs", "protocol", "faces"]

# ----------------------------------------------------------------------------- settings
# Every cell of ours in a paper-layout table is marked when the setting behind it
# differs from the paper's: data set, image size, GAN prior (architecture, output
# resolution, training data; only for the methods that use the prior) and number of
# test images (only where the paper states it).  ``differs`` holds the exact list;
# each distinct list gets one footnote symbol.

#: The papers' settings per (paper, data-set column).  Yeh et al.'s slides state
#: CelebA aligned and cropped to 64x64 and a DCGAN prior, not the test-set size
#: (n None: never compared); IAGAN states BEGAN 128x128 (CelebA) / PGGAN
#: 1024x1024 (CelebA-HQ) and 100 test images per table.
PAPER_SETTINGS = {
    ("yeh2018", "celeba"): {"dataset": "celeba", "image_size": 64, "prior": ("dcgan", 64, "celeba"), "n": None},
    ("iagan", "celeba"): {"dataset": "celeba", "image_size": 128, "prior": ("began", 128, "celeba"), "n": 100},
    ("iagan", "celebahq"): {"dataset": "celebahq", "image_size": 1024, "prior": ("pggan", 1024, "celebahq"),
                            "n": 100},
}
DATASET_LABELS = {"celeba": "CelebA", "celebahq": "CelebA-HQ", "demo": "demo faces", "folder": "image folder",
                  "gan-face-generate samples": "gan-face-generate samples"}
PRIOR_LABELS = {"dcgan": "DCGAN", "began": "BEGAN", "pggan": "PGGAN"}
MARK_SYMBOLS = ["†", "‡", "§", "¶"]


def run_setting(info: dict) -> dict:
    """Our setting from the report rules' ``info`` (``report_params()``): data
    source, image size, the prior (``{arch, resolution, data, width}`` or None)
    and the methods that use it."""
    return {"dataset": info.get("source"), "image_size": info.get("image_size"), "prior": info.get("prior"),
            "prior_methods": set(info.get("prior_methods") or [])}


def _prior_label(arch, res, data, width=None) -> str:
    w = f" (width {width})" if width else ""
    size = f" {res}×{res}" if res else ""
    return f"{PRIOR_LABELS.get(arch, arch)}{size}{w} trained on {DATASET_LABELS.get(data, data)}"


def setting_differences(paper: dict, ours: dict, method: str, n=None) -> str:
    """The settings in which our cell (``method``, ``n`` images) differs from the
    paper's, as ``'; '``-joined phrases ('' when none differs)."""
    out = []
    if ours.get("dataset") is not None and ours["dataset"] != paper["dataset"]:
        out.append(f"data set {DATASET_LABELS.get(ours['dataset'], ours['dataset'])} "
                   f"(paper: {DATASET_LABELS[paper['dataset']]})")
    size = ours.get("image_size")
    if size is not None and int(size) != paper["image_size"]:
        out.append(f"image size {size}×{size} (paper: {paper['image_size']}×{paper['image_size']})")
    pr = ours.get("prior")
    if method in ours.get("prior_methods", ()) and pr:
        if (pr.get("arch"), pr.get("resolution"), pr.get("data")) != paper["prior"]:
            out.append(f"prior {_prior_label(pr.get('arch'), pr.get('resolution'), pr.get('data'), pr.get('width'))}"
                       f" (paper: {_prior_label(*paper['prior'])})")
    if paper["n"] is not None and n is not None and not pd_isna(n) and int(n) != paper["n"]:
        out.append(f"{int(n)} test images (paper: {paper['n']})")
    return "; ".join(out)


def setting_marks(comp) -> dict:
    """``{differs text: symbol}`` in order of first appearance (†, ‡, §, ¶, ††, ...)."""
    texts = [d for d in dict.fromkeys(comp["differs"]) if isinstance(d, str) and d] if "differs" in comp else []
    k = len(MARK_SYMBOLS)
    return {d: MARK_SYMBOLS[i % k] * (i // k + 1) for i, d in enumerate(texts)}


def comparison_footnotes(comp) -> list[str]:
    """One footnote per marker: exactly which of our settings differ from the paper's."""
    return [f"{sym} Our setting differs from the paper's: {d}." for d, sym in setting_marks(comp).items()]


def _pd():
    import pandas as pd  # noqa: PLC0415  (only the paper-table functions need pandas)

    return pd


def noise_sigma(v) -> float:
    """Noise level of a paper row in [0, 1] units: ``'10/255'`` -> 0.0392, ``'0'`` -> 0."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or str(v).strip() == "":
        return 0.0
    s = str(v).strip()
    if "/" in s:
        a, b = s.split("/", 1)
        return float(a) / float(b)
    return float(s)


_NOISE_SUFFIX = re.compile(r"^(?P<base>.+?)_noise(?P<sigma>[0-9.]+)$")


def split_task_noise(name: str, task_sigma: dict | None = None) -> tuple[str, float]:
    """``'sr4_noise0.0392'`` -> ``('sr4', 0.0392)``; ``'sr4'`` -> ``('sr4', 0.0)``.

    ``task_sigma`` (task name -> sigma, e.g. from ``make_task``) overrides the
    sigma read from the name, for task families whose noise is not in the name.
    """
    m = _NOISE_SUFFIX.match(name)
    base, sigma = (m["base"], float(m["sigma"])) if m else (name, 0.0)
    if task_sigma and name in task_sigma:
        sigma = float(task_sigma[name])
    return base, sigma


def read_paper_csv(path):
    """A paper table CSV (``#`` comment lines first) as a DataFrame; the comment
    text is kept in ``df.attrs['note']``."""
    pd = _pd()
    with open(path) as f:
        lines = f.read().splitlines()
    note = " ".join(ln.lstrip("# ").strip() for ln in lines if ln.startswith("#"))
    body = "\n".join(ln for ln in lines if not ln.startswith("#"))
    df = pd.read_csv(_io.StringIO(body), dtype={"table": str, "noise": str})
    df.attrs["note"] = note
    return df


def aggregates_frame(aggregates, pairs=None):
    """Our aggregates as a DataFrame with a ``status`` column.

    ``aggregates``: list of dicts (the evaluate JSONs), a DataFrame, or a CSV
    path.  ``pairs``: optional ``(task, method, applies)`` of every configured
    pair; configured pairs without an aggregate get status 'n/a' (method does
    not apply) or 'not run'.
    """
    pd = _pd()
    if isinstance(aggregates, pd.DataFrame):
        df = aggregates.copy()
    elif isinstance(aggregates, (str, bytes)) or hasattr(aggregates, "__fspath__"):
        df = pd.read_csv(aggregates)
    else:
        df = pd.DataFrame(list(aggregates))
    if df.empty:
        df = pd.DataFrame(columns=["task", "method", "n"])
    if "status" not in df.columns:
        df["status"] = "ok"
    df["status"] = df["status"].fillna("ok").astype(str)
    df.loc[df["status"].str.startswith("n/a"), "status"] = NOT_APPLICABLE
    df.loc[df["status"].str.startswith("missing") | df["status"].str.startswith("not run"), "status"] = NOT_RUN
    # a result with failed images (diverged, no progress, non-finite objective) is
    # never shown as a normal number: its mean covers other images than the paper's
    if "n_failed" in df.columns:
        nf = pd.to_numeric(df["n_failed"], errors="coerce").fillna(0).astype(int)
        n = pd.to_numeric(df.get("n", nf), errors="coerce").fillna(0).astype(int)
        bad = nf > 0
        df.loc[bad, "status"] = [f"{FAILED} ({a} of {b} images)" for a, b in zip(nf[bad], n[bad])]
    df.loc[df["status"].str.contains("failed") & ~df["status"].str.startswith(FAILED), "status"] = FAILED
    if pairs:
        have = set(zip(df["task"], df["method"]))
        extra = [{"task": t, "method": m, "status": "ok" if ok else NOT_APPLICABLE}
                 for t, m, ok in pairs if (t, m) not in have]
        extra = [dict(e, status=NOT_RUN) if e["status"] == "ok" else e for e in extra]
        if extra:
            df = pd.concat([df, pd.DataFrame(extra)], ignore_index=True)
    return df.reset_index(drop=True)


def yeh_paper_long(paper):
    """Yeh et al.'s table (method, task, ssim, psnr_db) in long form."""
    pd = _pd()
    rows = []
    for r in paper.itertuples(index=False):
        for metric, col in (("ssim", "ssim"), ("psnr", "psnr_db")):
            v = getattr(r, col)
            rows.append({"table": "yeh2018", "column": r.task, "dataset": "celeba", "task": r.task,
                         "noise": None, "method": r.method, "metric": metric,
                         "paper": float(v) if pd.notna(v) else math.nan})
    return pd.DataFrame(rows)


def _sigma_label(noise) -> str:
    """A paper column's noise in both conventions: the paper's figure read in [0, 1]
    pixel units (ours) and on the generator's [-1, 1] scale, twice as large (IAGAN's
    code adds its '10/255' there, i.e. 5/255 in [0, 1] units)."""
    s = noise_sigma(noise)
    if not s:
        return ""
    return f" (σ {noise} = {s:.4f} in [0, 1] units, {2 * s:.4f} on [−1, 1])"


def iagan_paper_long(paper, tables=("1", "2", "3", "4")):
    """IAGAN Tables 1-4 (table, dataset, task, noise, method, psnr_db, lpips) in long form."""
    pd = _pd()
    rows = []
    for r in paper.itertuples(index=False):
        if str(r.table) not in tables:
            continue
        for metric, col in (("psnr", "psnr_db"), ("lpips", "lpips")):
            v = getattr(r, col)
            rows.append({"table": f"iagan{r.table}", "column": f"{r.dataset} {r.task}{_sigma_label(r.noise)}",
                         "dataset": r.dataset,
                         "task": r.task, "noise": str(r.noise), "method": r.method, "metric": metric,
                         "paper": float(v) if pd.notna(v) else math.nan})
    return pd.DataFrame(rows)


def _match_task(paper_task: str, paper_noise, our_tasks: list[str], task_sigma=None) -> str | None:
    if paper_noise is None:
        return paper_task if paper_task in our_tasks else None
    want = noise_sigma(paper_noise)
    for t in our_tasks:
        base, sigma = split_task_noise(t, task_sigma)
        if base == paper_task and abs(sigma - want) < 1e-3:
            return t
    return None


def compare(paper_long, aggregates, metrics: dict, *, dataset: str | None = None, task_sigma=None,
            aliases=None, extra_methods: bool = True, setting: dict | None = None, paper: str = "iagan"):
    """Join paper cells with our aggregates: the long comparison frame.

    ``metrics``: metric -> (our column, label, digits).  ``dataset``: our
    results are placed in the paper columns of this dataset only (IAGAN reports
    CelebA and CelebA-HQ; ``None`` = any).  ``extra_methods``: also list our
    methods that the paper does not have, on the paper's columns (paper cells
    'not reported').  Status per row: 'ok', 'not run' (no result of ours),
    'n/a' (the method does not apply to the task), 'failed' (no finite value),
    'not reported' (the paper has no number; ours may still be present).
    ``setting``: our run's setting (:func:`run_setting`); each row with a value
    of ours gets ``differs``, the settings in which it differs from ``paper``'s
    (:data:`PAPER_SETTINGS`) for that data-set column; no marks without it.
    """
    pd = _pd()
    aliases = PAPER_METHOD_ALIASES if aliases is None else aliases
    ours = aggregates_frame(aggregates)
    our_tasks = list(dict.fromkeys(ours["task"].tolist()))
    index = {(r["task"], r["method"]): r for r in ours.to_dict("records")}

    def finite(v):
        return v is not None and not (isinstance(v, float) and math.isnan(v)) and math.isfinite(float(v))

    def our_value(task, method, metric):
        """(value, n, status) of our result for one paper cell."""
        r = index.get((task, method)) if task is not None else None
        if r is None:
            return math.nan, None, NOT_RUN
        n = int(r["n"]) if finite(r.get("n")) else None
        if r.get("status", "ok") != "ok":
            return math.nan, n, r["status"]
        v = r.get(metrics[metric][0])
        if finite(v):
            return float(v), n, "ok"
        # no value: every image failed (no PSNR either), or this metric was not computed
        return math.nan, n, FAILED if not finite(r.get("psnr_mean", r.get("psnr_of_mean_mse"))) else NOT_COMPUTED

    def differs(dset, method, v, n):
        ps = PAPER_SETTINGS.get((paper, dset))
        if setting is None or ps is None or not math.isfinite(v):
            return ""
        return setting_differences(ps, setting, method, n)

    rows = []
    paper_long = paper_long[paper_long["metric"].isin(list(metrics))]
    columns = paper_long.drop_duplicates("column")[["table", "column", "dataset", "task", "noise"]]
    for p in paper_long.to_dict("records"):
        use = dataset is None or p["dataset"] == dataset
        t = _match_task(p["task"], p["noise"], our_tasks, task_sigma) if use else None
        m = aliases.get(p["method"], p["method"])
        v, n, st = our_value(t, m, p["metric"])
        if st == "ok" and not math.isfinite(p["paper"]):
            st = NOT_REPORTED
        rows.append({**p, "our_task": t, "our_method": m, "ours": v,
                     "diff": v - p["paper"] if math.isfinite(v) and math.isfinite(p["paper"]) else math.nan,
                     "n": n, "status": st, "in_paper": True, "differs": differs(p["dataset"], m, v, n)})
    if extra_methods:
        paper_methods = {aliases.get(m, m) for m in paper_long["method"]}
        for m in dict.fromkeys(ours["method"]):
            if m in paper_methods:
                continue
            cand = []
            for c in columns.to_dict("records"):
                use = dataset is None or c["dataset"] == dataset
                t = _match_task(c["task"], c["noise"], our_tasks, task_sigma) if use else None
                for metric in metrics:
                    v, n, st = our_value(t, m, metric)
                    cand.append({**c, "method": m, "our_task": t, "our_method": m, "metric": metric,
                                 "paper": math.nan, "ours": v, "diff": math.nan, "n": n,
                                 "status": NOT_REPORTED if st == "ok" else st, "in_paper": False,
                                 "differs": differs(c["dataset"], m, v, n)})
            if any(math.isfinite(r["ours"]) for r in cand):
                rows += cand
    for r in rows:
        r.setdefault("protocol", "slides")
        r.setdefault("faces", REAL)
    out = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    out["n"] = out["n"].astype("Int64")
    return out


OFFICIAL_SUFFIX = "_official"


def _add_in_range(comp, comp_in):
    """``comp`` (our real photos) with the rows of ``comp_in`` (the same table on
    the in-range faces) appended as ``faces = 'in_range'``: no difference to the
    paper (it tests on real faces) and no setting marks; methods without any
    in-range value are left out."""
    pd = _pd()
    if comp_in is None or comp_in.empty:
        return comp
    comp_in = comp_in.copy()
    keep = comp_in.groupby("method")["ours"].transform(lambda v: bool(pd.to_numeric(v).notna().any()))
    comp_in = comp_in[keep.astype(bool)]
    comp_in["faces"], comp_in["diff"], comp_in["differs"] = IN_RANGE, math.nan, ""
    return pd.concat([comp, comp_in], ignore_index=True)


def yeh_comparison(aggregates, paper, extra_methods=True, setting=None, in_range=None):
    """Yeh et al.'s table (SSIM / mean per-image PSNR) beside ours; ``setting``
    (:func:`run_setting`) marks our cells whose setting differs from the paper's.

    ``aggregates``: our real photos (:func:`kind_aggregates`); ``in_range``:
    optional aggregates of the in-range faces, shown in rows of their own
    (:func:`_add_in_range`).  Results of ``<task>_official`` tasks (the official
    code's protocol, :mod:`ganrestore.official`) fill the same paper cells in
    rows of their own (``protocol`` = 'official'), so a reader sees both readings
    beside the paper."""
    if in_range is not None and len(in_range):
        return _add_in_range(yeh_comparison(aggregates, paper, extra_methods, setting),
                             yeh_comparison(in_range, paper, extra_methods, setting))
    pd = _pd()
    df = aggregates_frame(aggregates)
    official = df["task"].astype(str).str.endswith(OFFICIAL_SUFFIX)
    comp = compare(yeh_paper_long(paper), df[~official].reset_index(drop=True), YEH_METRICS,
                   extra_methods=extra_methods, setting=setting, paper="yeh2018")
    if not official.any():
        return comp
    off = df[official].copy()
    off["task"] = off["task"].str.slice(0, -len(OFFICIAL_SUFFIX))
    comp2 = compare(yeh_paper_long(paper), off.reset_index(drop=True), YEH_METRICS,
                    extra_methods=extra_methods, setting=setting, paper="yeh2018")
    comp2 = comp2[comp2["our_task"].notna()].copy()
    comp2["our_task"] = comp2["our_task"] + OFFICIAL_SUFFIX
    comp2["protocol"] = "official"
    return pd.concat([comp, comp2], ignore_index=True)


def iagan_comparison(aggregates, paper, table: str, dataset: str = "celeba", task_sigma=None,
                     extra_methods=True, setting=None, in_range=None):
    """IAGAN Table ``table`` (PSNR of the mean MSE / LPIPS) beside ours; ours go
    into the ``dataset`` columns; ``setting`` and ``in_range`` as in :func:`yeh_comparison`."""
    def one(aggs):
        return compare(iagan_paper_long(paper, tables=(str(table),)), aggs, IAGAN_METRICS,
                       dataset=dataset, task_sigma=task_sigma, extra_methods=extra_methods, setting=setting,
                       paper="iagan")
    comp = one(aggregates)
    return _add_in_range(comp, one(in_range)) if in_range is not None and len(in_range) else comp


# ----------------------------------------------------------------------------- rendering
def _num(v, digits, signed=False):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    s = f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"
    return s.replace("-", "−") if signed else s


def _cell(vals: list, statuses: list, empty: str) -> str:
    """Join per-metric values 'a / b'; a cell with no value at all says why."""
    if all(v is None for v in vals):
        st = [s for s in statuses if s not in ("ok", NOT_REPORTED)]
        return st[0] if st else empty
    return " / ".join(v if v is not None else "—" for v in vals)


def comparison_grid(comp, metrics: dict, method_labels=None) -> tuple[list[str], list[list[str]]]:
    """The paper layout as a grid: header and rows ``[method, source, cell per column]``.

    Sources per paper method: 'paper', 'ours (n=..)', 'ours − paper'; our
    methods the paper lacks get one 'ours' row.  Our cells (and their
    differences) whose setting differs from the paper's end in a footnote
    symbol (:func:`comparison_footnotes`).
    """
    labels = {**METHOD_LABELS, **(method_labels or {})}
    marks = setting_marks(comp)

    def mark(cell, rs):
        d = next((r.get("differs") for r in rs if r and isinstance(r.get("differs"), str) and r.get("differs")), "")
        return f"{cell} {marks[d]}" if d in marks else cell

    mets = [m for m in metrics if m in set(comp["metric"])] or list(metrics)
    cols = list(dict.fromkeys(comp["column"]))
    header = ["method", ""] + [f"{c}" for c in cols]
    grid = []
    if "protocol" not in comp.columns:
        comp = comp.assign(protocol="slides")
    comp = comp.assign(protocol=comp["protocol"].fillna("slides"))
    if "faces" not in comp.columns:
        comp = comp.assign(faces=REAL)
    comp = comp.assign(faces=comp["faces"].fillna(REAL))
    protocols = list(dict.fromkeys(["slides"] + list(comp["protocol"])))
    two_kinds = comp["faces"].nunique() > 1
    in_paper_methods = set(comp.loc[comp["in_paper"].astype(bool), "method"])
    by = {(r["method"], r["column"], r["metric"], r["protocol"], r["faces"]): r for r in comp.to_dict("records")}
    records = comp.to_dict("records")
    for meth in dict.fromkeys(comp["method"]):
        in_paper = meth in in_paper_methods
        label = labels.get(meth, meth)
        paper_cells, blocks = [], []
        for proto, faces in [(p, f) for p in protocols for f in KINDS]:
            if not any(r["method"] == meth and r["protocol"] == proto and r["faces"] == faces for r in records):
                continue
            ours_cells, diff_cells, ns = [], [], set()
            first = not paper_cells and proto == "slides"
            for c in cols:
                rs = [by.get((meth, c, m, proto, faces)) for m in mets]
                dig = [metrics[m][2] for m in mets]
                if first:
                    paper_cells.append(_cell([_num(r["paper"], d) if r else None for r, d in zip(rs, dig)],
                                             [NOT_REPORTED] * len(rs), NOT_REPORTED))
                ours = [_num(r["ours"], d) if r else None for r, d in zip(rs, dig)]
                diff = [_num(r["diff"], d, signed=True) if r else None for r, d in zip(rs, dig)]
                ours_cells.append(_cell(ours, [r["status"] if r else NOT_RUN for r in rs], NOT_RUN))
                diff_cells.append(_cell(diff, ["ok"] * len(rs), "—"))
                if any(v is not None for v in ours):
                    ours_cells[-1] = mark(ours_cells[-1], rs)
                if any(v is not None for v in diff):
                    diff_cells[-1] = mark(diff_cells[-1], rs)
                ns |= {int(r["n"]) for r in rs if r and r["n"] is not None and not pd_isna(r["n"])}
            n_txt = f" (n={ns.pop()})" if len(ns) == 1 else (f" (n={min(ns)}–{max(ns)})" if ns else "")
            blocks.append((proto, faces, ours_cells, diff_cells, n_txt))
        if not paper_cells:      # a method run under the official protocol only
            paper_cells = [NOT_REPORTED] * len(cols)

        def tag(proto, faces):
            t = "" if len(protocols) == 1 else f", {proto} protocol"
            return t + (f", {KIND_LABELS[faces]}" if two_kinds else "")

        if in_paper:
            our_name = next((r["our_method"] for r in records if r["method"] == meth), meth)
            alias = f" [{our_name}]" if our_name != meth else ""
            grid.append([label, "paper"] + paper_cells)
            for proto, faces, ours_cells, diff_cells, n_txt in blocks:
                grid.append(["", f"ours{alias}{tag(proto, faces)}{n_txt}"] + ours_cells)
                if faces == REAL:    # the paper tests on real faces: only those are compared with it
                    grid.append(["", f"ours{tag(proto, faces)} − paper"] + diff_cells)
        else:
            for i, (proto, faces, ours_cells, _, n_txt) in enumerate(blocks):
                grid.append([f"{label} (not in paper)" if i == 0 else "", f"ours{tag(proto, faces)}{n_txt}"]
                            + ours_cells)
    return header, grid


COLORIZE_HOW = {
    ("tv", "gray"): "TV restricted to grey images (no colour model): returns the grey input",
    ("tv", "generic"): "TV on colour images through the luma operator (no colour model: a tinted grey)",
    ("lowrank", "gray"): "low-rank restricted to grey images (no colour model): returns the grey input",
    ("lowrank", "generic"): ("low-rank on colour images through the luma operator (its per-channel "
                             "nuclear-norm minimiser puts the whole picture in the green channel)"),
    ("sparse", None): "sparse coding colourises (grey patches coded with the luma of colour atoms)",
}


def colorize_note(modes: dict) -> str:
    """How each classical baseline treats colourisation (blank in Yeh et al.'s
    table), from ``{method: colorize mode}`` (``gray`` | ``generic`` for tv and
    lowrank, None for sparse); methods not in ``modes`` are left out."""
    parts = [COLORIZE_HOW[(m, modes[m] if m != "sparse" else None)]
             for m in ("tv", "lowrank", "sparse") if m in modes]
    return ("Colourisation (the paper left the classical cells blank): " + "; ".join(parts) + ".") if parts else ""


def pd_isna(v) -> bool:
    return bool(_pd().isna(v))


def comparison_markdown(comp, metrics: dict, title: str = "", note: str = "", method_labels=None) -> str:
    header, grid = comparison_grid(comp, metrics, method_labels)
    what = " / ".join(metrics[m][1] for m in metrics if m in set(comp["metric"])) or \
        " / ".join(v[1] for v in metrics.values())
    out = []
    if title:
        out += [f"# {title}", ""]
    out += [f"Cells: {what}. " + (note or ""), ""]
    out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in grid]
    out += [x for f in comparison_footnotes(comp) for x in ("", f)]
    return "\n".join(out) + "\n"


def md_cell(s) -> str:
    """Text safe inside a Markdown table cell (pipes escaped, one line)."""
    return str(s).replace("|", "\\|").replace("\n", " ")


def _tex(s: str) -> str:
    rep = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
           "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
           "†": r"\textdagger{}", "‡": r"\textdaggerdbl{}", "§": r"\S{}", "¶": r"\P{}", "×": r"$\times$"}
    s = "".join(rep.get(ch, ch) for ch in s)
    return s.replace("−", "$-$").replace("—", "---").replace("–", "--")


def comparison_latex(comp, metrics: dict, caption: str = "", label: str = "", method_labels=None) -> str:
    """A ``table`` environment (booktabs rules) in the paper's layout."""
    header, grid = comparison_grid(comp, metrics, method_labels)
    what = " / ".join(metrics[m][1] for m in metrics if m in set(comp["metric"]))
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             r"\begin{tabular}{ll" + "c" * (len(header) - 2) + "}", r"\toprule",
             " & ".join(_tex(h) for h in header) + r" \\", r"\midrule"]
    for i, row in enumerate(grid):
        if i and row[0]:
            lines.append(r"\midrule")
        cells = [_tex(c) if c not in (NOT_RUN, NOT_APPLICABLE, NOT_REPORTED, FAILED, NOT_COMPUTED) else
                 r"\emph{" + _tex(c) + "}" for c in row]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [r"\par{\footnotesize " + _tex(f) + r"}\par" for f in comparison_footnotes(comp)]
    if caption:
        lines.append(r"\caption{" + _tex(f"{caption} Cells: {what}.") + "}")
    if label:
        lines.append(r"\label{" + label + "}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def comparison_csv(comp) -> str:
    return comp.to_csv(index=False, float_format="%.6g", lineterminator="\n")


def write_comparison(comp, metrics: dict, stem, title: str, note: str = "", label: str = "") -> dict:
    """Write ``stem``.html / .md / .csv / .tex atomically; returns the four paths."""
    from pathlib import Path

    from .io import write_text_atomic

    stem = Path(stem)
    paths = {ext: stem.with_name(stem.name + f".{ext}") for ext in ("html", "md", "csv", "tex")}
    write_text_atomic(paths["html"], comparison_html(comp, metrics, title, note))
    write_text_atomic(paths["md"], comparison_markdown(comp, metrics, title, note))
    write_text_atomic(paths["csv"], comparison_csv(comp))
    write_text_atomic(paths["tex"], comparison_latex(comp, metrics, f"{title}. {note}".strip(),
                                                     label or f"tab:{stem.name}"))
    return paths


# ----------------------------------------------------------------------------- HTML (for the report)
_HTML_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; font-size: 13px; margin: 1em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: center; white-space: nowrap; }
th { background: #f0f0f0; }
td.method { text-align: left; font-weight: 600; }
td.source { text-align: left; color: #555; }
tr.paper td { border-top: 2px solid #888; }
tr.diff td { color: #444; font-style: italic; }
td.missing { color: #999; }
p.note { max-width: 60em; color: #333; }
td.text { text-align: left; white-space: normal; max-width: 40em; }
td.held { color: #1a7f37; font-weight: 600; }
td.not-held { color: #b42318; font-weight: 600; }
td.not-run { color: #999; }
td.inconclusive { color: #9a6700; font-weight: 600; }
"""


def _html_page(title: str, note: str, table_html: str) -> str:
    from html import escape

    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{_HTML_STYLE}</style></head><body>\n"
            f"<h2>{escape(title)}</h2>\n" + (f"<p class=\"note\">{escape(note)}</p>\n" if note else "")
            + table_html + "\n</body></html>\n")


def html_page(title: str, note: str, table_html: str) -> str:
    """A standalone HTML page (the tables' style) around ``table_html``."""
    return _html_page(title, note, table_html)


def comparison_html(comp, metrics: dict, title: str = "", note: str = "", method_labels=None) -> str:
    """The paper layout as a standalone HTML page (what the Snakemake report shows)."""
    from html import escape

    header, grid = comparison_grid(comp, metrics, method_labels)
    what = " / ".join(metrics[m][1] for m in metrics if m in set(comp["metric"]))
    words = {NOT_RUN, NOT_APPLICABLE, NOT_REPORTED, FAILED, NOT_COMPUTED, "—"}
    out = ["<table>", "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>"]
    for row in grid:
        kind = "paper" if row[1] == "paper" else ("diff" if " − paper" in row[1] else "ours")
        if row[0] and kind != "paper":
            kind += " paper"  # first row of a method block that has no paper row
        cells = [f"<td class=\"method\">{escape(row[0])}</td>", f"<td class=\"source\">{escape(row[1])}</td>"]
        cells += [f"<td class=\"missing\">{escape(c)}</td>" if c in words or c.startswith(FAILED)
                  else f"<td>{escape(c)}</td>"
                  for c in row[2:]]
        out.append(f"<tr class=\"{kind}\">" + "".join(cells) + "</tr>")
    out.append("</table>")
    out += [f"<p class=\"note\">{escape(f)}</p>" for f in comparison_footnotes(comp)]
    return _html_page(title, f"Cells: {what}. {note}".strip(), "\n".join(out))


#: Columns of the full results table: (aggregate key, header, digits).
RESULTS_COLUMNS = [("n", "n", 0), ("n_failed", "failed", 0), ("psnr_mean", "PSNR mean (dB)", 2),
                   ("psnr_ci95", "± 95% CI", 2), ("psnr_of_mean_mse", "PSNR of mean MSE (dB)", 2),
                   ("psnr_official_mean", "PSNR, official Yeh code's convention (dB)", 2),
                   ("ssim_mean", "SSIM mean", 4), ("ssim_ci95", "± 95% CI", 4),
                   ("lpips_mean", "LPIPS mean", 4), ("lpips_ci95", "± 95% CI", 4),
                   ("seconds_per_image", "s / image", 3)]


def faces_aggregates(aggregates) -> list[dict]:
    """The evaluate JSONs as one record per (task, method, image kind) with a
    ``faces`` label (real, in-range; and all when the run has both kinds)."""
    kinds = kinds_of(aggregates)
    kinds = kinds + [ALL] if len(kinds) > 1 else kinds
    return [{**a, "faces": faces_label(k)} for k in kinds for a in kind_aggregates(aggregates, k)]


def results_table(aggregates, pairs=None):
    """Every (task, method) with all metrics, one row per image kind
    (:func:`faces_aggregates`), as a DataFrame (status included).  ``aggregates``:
    the evaluate JSONs, or a frame of aggregates (one kind, ``faces`` real)."""
    pd = _pd()
    if not isinstance(aggregates, pd.DataFrame):
        recs = faces_aggregates(list(aggregates))
        order = {(a["task"], a["method"]): i for i, a in enumerate(aggregates)}
        recs.sort(key=lambda r: (order[(r["task"], r["method"])], ["real", "in-range", "all"].index(r["faces"])))
        aggregates = pd.DataFrame(recs)
    df = aggregates_frame(aggregates, pairs)
    if "faces" not in df.columns:
        df["faces"] = faces_label(REAL)
    cols = ["task", "method", "faces", "status"] + [k for k, _, _ in RESULTS_COLUMNS]
    for c in cols:
        if c not in df.columns:
            df[c] = math.nan
    return df[cols]


def results_html(aggregates, pairs=None, title: str = "All results", note: str = "") -> str:
    """All our aggregates (PSNR both ways, SSIM, LPIPS, CIs) as an HTML page."""
    from html import escape

    df = results_table(aggregates, pairs)
    out = ["<table>", "<tr><th>task</th><th>method</th><th>faces</th>"
           + "".join(f"<th>{escape(h)}</th>" for _, h, _ in RESULTS_COLUMNS) + "</tr>"]
    last = None
    for r in df.to_dict("records"):
        cls = " class=\"paper\"" if r["task"] != last else ""
        last = r["task"]
        faces = r["faces"] if isinstance(r.get("faces"), str) else ""
        cells = [f"<td class=\"method\">{escape(str(r['task']))}</td>", f"<td>{escape(str(r['method']))}</td>",
                 f"<td>{escape(faces)}</td>"]
        if r["status"] != "ok":
            cells.append(f"<td class=\"missing\" colspan=\"{len(RESULTS_COLUMNS)}\">{escape(r['status'])}</td>")
        else:
            for k, _, d in RESULTS_COLUMNS:
                v = r.get(k)
                txt = _num(float(v), d) if v is not None and not pd_isna(v) else None
                cells.append(f"<td>{txt}</td>" if txt is not None else "<td class=\"missing\">—</td>")
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return _html_page(title, note, "\n".join(out))


# ----------------------------------------------------------------------------- fidelity notes
def fidelity_note(aggregates, tasks, image_size: int, dataset: str = "celeba") -> str:
    """The Table 1 note on the Fourier operator (issue 25): for every configured
    ``cs_fourier`` task, our naive IFFT (the ``input`` row, PSNR of the mean MSE)
    beside the paper's and whether the operator is verified against it
    (:func:`ganrestore.fidelity.operator_fidelity`: no reading of the official
    code reproduces the paper's naive IFFT, so it is not); '' without such a task."""
    from .fidelity import operator_fidelity  # noqa: PLC0415

    df = aggregates_frame(aggregates)
    parts, why = [], ""
    for t in tasks:
        f = operator_fidelity(t, image_size, dataset)
        if f is None:
            continue
        why = f["why"]
        row = df[(df["task"] == t) & (df["method"] == "input")] if len(df) else df
        ours = float(row["psnr_of_mean_mse"].iloc[0]) if len(row) and "psnr_of_mean_mse" in row else math.nan
        gap = ours - f["paper_naive_ifft_db"] if math.isfinite(ours) and f["paper_naive_ifft_db"] else math.nan
        status = "verified" if f["verified"] else f"**{f['status']}**"
        parts.append(f"{t}: our naive IFFT {ours:.2f} dB vs the paper's {f['paper_naive_ifft_db']:.2f} dB "
                     f"(gap {gap:+.2f} dB; reading '{f['reading']}', {status})")
    if not parts:
        return ""
    why = why[:1].upper() + why[1:] + ("" if why.endswith(".") else ".")
    return "Fourier operator: " + "; ".join(parts) + f". {why}"


def yeh_profile_note(profiles: dict) -> str:
    """Which official Yeh profile ran on each ``<task>_official`` task and where its
    settings come from (:func:`ganrestore.official.yeh_profile_of`), e.g. 'official
    (src/inpaint_test.py; iterations 100 instead of 1000)'; '' when none ran."""
    if not profiles:
        return ""
    parts = []
    for t, p in sorted(profiles.items()):
        if not p:
            continue
        diff = "; ".join(f"{k} {v[1]} instead of {v[0]}" for k, v in (p.get("differs") or {}).items())
        parts.append(f"{t}: profile '{p.get('profile')}' ({p.get('source')}{'; ' + diff if diff else ''})")
    return ("Official rows ran " + ", ".join(parts) + ".") if parts else ""
