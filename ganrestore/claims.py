"""The papers' checkable claims, evaluated from one run's aggregate metrics.

Every claim of seeds 000/001 (Yeh et al., "Image Restoration with Deep Generative
Models", ICASSP 2018, slides) and 003 (Abu Hussein, Tirer, Giryes, "Image-Adaptive
GAN based Reconstruction" (IAGAN), arXiv 1906.05284) that our metrics can check is
a :class:`Claim` in :data:`CLAIMS`: an id, its source (seed, table / figure /
section), the statement, the methods and metrics it needs, and a check that turns
the run's aggregates (the JSONs of ``pipeline.run_evaluate``) into a status and
the numbers behind it.  Nothing is typed in: the only paper numbers used are those
of ``config/paper_tables/iagan_tables.csv``, to find the cells where IAGAN's
tables put it ahead of a baseline.

Decision rules, the same for every claim:

* **Status.** ``held`` / ``not held`` / ``not run``.  A claim is *not run* when a
  (task, method) result it needs is configured but missing, when any of that
  result's images failed (a mean over a different subset of images is not a
  like-for-like comparison), when the metric was not computed (LPIPS without
  weights), or when no configured task is in its scope.
* **Scope.** "On every task" means every configured task on which all of the
  claim's methods are configured and apply (``pairs``); the tasks are listed in
  the ``tasks`` column.  Claims about noiseless scenarios (back-projection) take
  the tasks without noise and without quantisation.
* **"A beats B"** holds when A's mean is strictly better (higher PSNR / SSIM,
  lower LPIPS / MSE / seconds); a tie is not held.  The 95% confidence
  intervals do not change the status; the ``ci`` column says how many of the
  claim's comparisons have disjoint 95% intervals (|a - b| > ci_a + ci_b, an
  unpaired and so conservative check; for the PSNR of the mean MSE, the
  intervals of the mean MSE).  Comparisons that go against the claim are marked
  ✗ in ``numbers``.
* **"A is close to B" / "competitive"** holds when |A - B| <= a tolerance that
  each claim states, chosen from the paper's own gaps.
* **PSNR convention** per paper, as in :mod:`ganrestore.tables`: Yeh et al. the
  mean of per-image PSNR (``psnr_mean``), IAGAN the PSNR of the mean MSE
  (``psnr_of_mean_mse``).

>>> aggs = [dict(task="sr4", method=m, n=4, n_failed=0, psnr_of_mean_mse=p, lpips_mean=l)
...         for m, p, l in (("iagan", 24.0, 0.10), ("csgm", 21.0, 0.20))]
>>> r = {c["id"]: c for c in evaluate_claims(aggs)}["iagan.beats_csgm.psnr"]
>>> r["status"], r["numbers"]
('held', 'sr4 PSNR (dB): iagan 24.00 vs csgm 21.00')
"""

from __future__ import annotations

import csv
import io as _io
import math
import re
from dataclasses import dataclass, field
from typing import Callable

HELD, NOT_HELD, NOT_RUN = "held", "not held", "not run"
YEH = "seed 000/001 (Yeh et al., ICASSP 2018 slides)"
IAGAN = "seed 003 (IAGAN, arXiv 1906.05284)"
CLASSICAL = ("tv", "lowrank", "sparse")
#: IAGAN's alternatives in its tables (naive IFFT / blurred input = our ``input``).
IAGAN_ALTERNATIVES = ("input", "bicubic", "dip", "csgm", "csgm_bp")
#: IAGAN-BP vs IAGAN, |delta PSNR| in dB: the paper's Table 2 gaps are 0.02, 0.04,
#: 0.00 and 0.42 dB (CelebA-HQ x16); 0.5 dB is the largest of them rounded up.
BP_CLOSE_DB = 0.5
#: DIP "competitive" with IAGAN on CelebA compressed sensing: Table 1's gaps are
#: 0.46 and 0.38 dB; 0.5 dB is the largest rounded up.
DIP_COMPETITIVE_DB = 0.5
#: Fig. 2 plateau: CSGM's mean MSE falls by less than this fraction from the
#: median to the largest m/n (the paper's CSGM curve is flat there while IAGAN's
#: keeps falling by an order of magnitude).
PLATEAU_FALL = 0.25
#: "only a small additional time compared to CSGM": the paper reports IAGAN at
#: 1.17x CSGM (35 vs 30 s, 140 vs 120 s); held up to 1.5x (timing noise).
RUNTIME_RATIO = 1.5


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    fmt: str
    higher: bool
    ci: str | None = None          # aggregate key of the 95% CI half-width ("mse": via mse_mean)

    def show(self, v) -> str:
        return self.fmt.format(v)

    def head(self, what) -> str:
        """``'<what> PSNR (dB)'``: the start of one comparison's text."""
        return f"{what} {self.label}" + (f" ({self.unit})" if self.unit else "")


METRICS = {
    "psnr": Metric("psnr_mean", "PSNR", "dB", "{:.2f}", True, "psnr_ci95"),
    "psnr_mse": Metric("psnr_of_mean_mse", "PSNR", "dB", "{:.2f}", True, "mse"),
    "ssim": Metric("ssim_mean", "SSIM", "", "{:.4f}", True, "ssim_ci95"),
    "lpips": Metric("lpips_mean", "LPIPS", "", "{:.3f}", False, "lpips_ci95"),
    "mse": Metric("mse_mean", "MSE", "", "{:.2e}", False, "mse_ci95"),
    "seconds": Metric("seconds_per_image", "time", "s/image", "{:.2f}", False, None),
}


def _finite(v) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


_NOISE = re.compile(r"_noise([0-9.]+)$")


def task_family(name: str) -> str:
    """Family of a task from its name (design names: inpaint_center32, colorize,
    sr4[_noise<s>], sr4_misaligned, denoise_sigma0.1, quantize5,
    cs_gaussian_<ratio>, cs_fourier_<ratio>, deblur_uniform9).  Tasks under the
    official Yeh protocol (``<task>_official``) are their own family: the claims
    are checked on the default (slides) protocol."""
    if name.endswith("_official"):
        return "official"
    for fam, pat in (("inpaint", r"inpaint"), ("colorize", r"colori[sz]e"), ("sr_misaligned", r"sr\d+_misaligned"),
                     ("sr", r"sr\d+"), ("denoise", r"denoise"), ("quantize", r"quantize"),
                     ("cs_gaussian", r"cs_gaussian"), ("cs_fourier", r"cs_fourier"), ("deblur", r"deblur")):
        if re.match(pat, name):
            return fam
    return name


def _name_noisy(name: str) -> bool:
    m = _NOISE.search(name)
    return bool(m and float(m[1]) > 0) or task_family(name) in ("denoise", "quantize")


def _cs_ratio(name: str, kind: str):
    m = re.match(rf"^cs_{kind}_([0-9.]+)$", name)
    return float(m[1]) if m else None


class Run:
    """One run's results as the claims see them.

    ``aggregates``: the evaluate JSONs (dicts) or a frame of them (a ``status``
    column, as :func:`ganrestore.tables.aggregates_frame` writes it, is honoured:
    'n/a' = does not apply, 'not run' / 'missing' = no result).  ``pairs``:
    every configured ``(task, method, applies)``; without it, the pairs with an
    aggregate.  ``task_info``: task -> ``{"noisy": bool, "sigma": float}`` (from
    the task registry; otherwise read from the name).  ``dataset``: the IAGAN
    data-set columns this run is compared with.  ``iagan_paper``: IAGAN's tables
    (:func:`ganrestore.tables.read_paper_csv`), for the claims about its cells.
    """

    def __init__(self, aggregates, pairs=None, task_info=None, dataset="celeba", iagan_paper=None):
        recs = aggregates.to_dict("records") if hasattr(aggregates, "to_dict") else list(aggregates)
        self.agg, listed = {}, {}
        for r in recs:
            st = str(r.get("status") or "ok") if not isinstance(r.get("status"), float) else "ok"
            listed[(r["task"], r["method"])] = not st.startswith("n/a")
            if not st.startswith(("n/a", "missing", "not run")):
                self.agg[(r["task"], r["method"])] = r
        if pairs is None:  # the listed pairs: 'n/a' rows do not apply, 'not run' rows are configured
            pairs = [(t, m, ok) for (t, m), ok in listed.items()]
        self.pairs = [(t, m, bool(ok)) for t, m, ok in pairs]
        self.applicable = {(t, m) for t, m, ok in self.pairs if ok}
        self.task_order = list(dict.fromkeys(t for t, _, _ in self.pairs))
        self.task_info = dict(task_info or {})
        self.dataset = dataset
        self.iagan_paper = iagan_paper

    def noisy(self, task) -> bool:
        info = self.task_info.get(task) or {}
        return bool(info["noisy"]) if "noisy" in info else _name_noisy(task)

    def sigma(self, task) -> float:
        info = self.task_info.get(task) or {}
        if "sigma" in info:
            return float(info["sigma"])
        m = _NOISE.search(task)
        return float(m[1]) if m else 0.0

    def tasks(self, methods, where: Callable[[str], bool] = lambda t: True) -> list[str]:
        """Configured tasks (in config order) on which every one of ``methods`` applies."""
        return [t for t in self.task_order if where(t) and all((t, m) in self.applicable for m in methods)]

    def value(self, task, method, metric):
        """``(value, None)`` or ``(None, why it is missing)``."""
        r = self.agg.get((task, method))
        if r is None:
            return None, f"{method} on {task}: no result"
        nf = r.get("n_failed")
        if _finite(nf) and int(nf) > 0:
            return None, f"{method} on {task}: {int(nf)} of {r.get('n')} images failed"
        v = r.get(METRICS[metric].key)
        if _finite(v):
            return float(v), None
        if metric == "lpips":
            return None, f"{method} on {task}: LPIPS not computed"
        return None, f"{method} on {task}: no {METRICS[metric].label}"

    def interval(self, task, method, metric):
        """The 95% interval ``(lo, hi)`` of the metric's mean, or None."""
        M, r = METRICS[metric], self.agg.get((task, method)) or {}
        if M.ci == "mse":
            m, c = r.get("mse_mean"), r.get("mse_ci95")
            if not (_finite(m) and _finite(c)) or m - c <= 0:
                return None
            return 10 * math.log10(1 / (m + c)), 10 * math.log10(1 / (m - c))
        v, c = r.get(M.key), r.get(M.ci) if M.ci else None
        return (v - c, v + c) if _finite(v) and _finite(c) else None


def _better(metric, a, b) -> bool:
    return a > b if METRICS[metric].higher else a < b


@dataclass
class _Tally:
    """The comparisons of one claim: the verdict, the text, the CI count."""

    run: Run
    failed: bool = False
    problems: list = field(default_factory=list)
    parts: list = field(default_factory=list)
    tasks: list = field(default_factory=list)
    n_ci: int = 0
    n_sep: int = 0

    def get(self, task, methods, metric):
        vals, bad = {}, False
        for m in methods:
            v, why = self.run.value(task, m, metric)
            if why:
                self.problems.append(why)
                bad = True
            vals[m] = v
        if task not in self.tasks:
            self.tasks.append(task)
        return None if bad else vals

    def ci(self, task, a, b, metric):
        ia, ib = self.run.interval(task, a, metric), self.run.interval(task, b, metric)
        if ia and ib:
            self.n_ci += 1
            self.n_sep += ia[1] < ib[0] or ib[1] < ia[0]

    def beats(self, task, a, others, metric, prefix=None):
        """``a`` strictly better than each of ``others`` on ``task``."""
        vals = self.get(task, [a, *others], metric)
        if vals is None:
            return
        M, texts = METRICS[metric], []
        for o in others:
            ok = _better(metric, vals[a], vals[o])
            self.failed |= not ok
            self.ci(task, a, o, metric)
            texts.append(f"{o} {M.show(vals[o])}" + ("" if ok else " ✗"))
        self.parts.append(f"{M.head(prefix or task)}: {a} {M.show(vals[a])} vs {', '.join(texts)}")

    def not_better_than_best(self, task, a, others, metric):
        """``a`` is not strictly better than the best of ``others``."""
        vals = self.get(task, [a, *others], metric)
        if vals is None:
            return
        M = METRICS[metric]
        best = max(others, key=lambda o: vals[o] if M.higher else -vals[o])
        ok = not _better(metric, vals[a], vals[best])
        self.failed |= not ok
        self.ci(task, a, best, metric)
        self.parts.append(f"{M.head(task)}: {a} {M.show(vals[a])} vs best {best} {M.show(vals[best])}"
                          + ("" if ok else " ✗"))

    def close(self, task, a, b, metric, tol):
        vals = self.get(task, [a, b], metric)
        if vals is None:
            return
        M, d = METRICS[metric], vals[a] - vals[b]
        ok = abs(d) <= tol
        self.failed |= not ok
        self.parts.append(f"{M.head(task)}: {a} {M.show(vals[a])} vs {b} {M.show(vals[b])} "
                          f"(|Δ| {abs(d):.2f} {'≤' if ok else '>'} {tol})" + ("" if ok else " ✗"))

    def verdict(self, empty: str = "no configured task in scope") -> dict:
        tasks = ", ".join(self.tasks)
        ci = f"{self.n_sep} of {self.n_ci} comparisons CI-separated" if self.n_ci else "—"
        if self.problems:
            text = "missing: " + "; ".join(dict.fromkeys(self.problems))
            return {"status": NOT_RUN, "tasks": tasks, "ci": ci,
                    "numbers": text + (" | computed: " + "; ".join(self.parts) if self.parts else "")}
        if not self.parts:
            return {"status": NOT_RUN, "tasks": tasks, "ci": "—", "numbers": empty}
        return {"status": NOT_HELD if self.failed else HELD, "tasks": tasks, "ci": ci,
                "numbers": "; ".join(self.parts)}


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    statement: str
    methods: tuple
    metrics: tuple
    check: Callable[[Run], dict] = field(repr=False)
    scope: str = "every configured task on which all its methods apply"


# ============================================================================= Yeh et al. (seeds 000/001)
def _yeh_inpaint(method):
    """Results table: 'Ours' 0.8121 / 23.60 dB on inpainting vs TV 0.7647 / 23.10,
    LR 0.6644 / 16.98, Sparse 0.7528 / 20.67 -- the only task where it leads."""
    def check(run):
        t = _Tally(run)
        for task in run.tasks([method, *CLASSICAL], lambda x: task_family(x) == "inpaint"):
            for metric in ("psnr", "ssim"):
                t.beats(task, method, CLASSICAL, metric)
        return t.verdict(f"needs an inpainting task with {method}, tv, lowrank and sparse")
    return check


def _yeh_poor_elsewhere(run):
    """Slide 'Results': "Other than inpainting, our method seems to perform poorly
    under these metrics."  In the table 'Ours' is below the best classical method
    in SSIM and PSNR on super-resolution, denoising and quantisation (but above LR
    in denoising PSNR, so "poorly" means "below the best", not "below all").
    Colourisation is left out: the table has no classical numbers for it."""
    t = _Tally(run)
    for task in run.tasks(["yeh", *CLASSICAL], lambda x: task_family(x) not in ("inpaint", "colorize")):
        for metric in ("psnr", "ssim"):
            t.not_better_than_best(task, "yeh", CLASSICAL, metric)
    return t.verdict("needs a non-inpainting, non-colourisation task with yeh, tv, lowrank and sparse")


# ============================================================================= IAGAN (seed 003)
def _every_task_beats(a, others, metric, where=lambda run, t: True, empty=None):
    def check(run):
        t = _Tally(run)
        for task in run.tasks([a, *others], lambda x: where(run, x)):
            t.beats(task, a, others, metric)
        return t.verdict(empty or f"needs a task with {a} and {', '.join(others)}")
    return check


def _iagan_best_lpips(run):
    """SR section: "both the visual examples and the PS (perceptual similarity)
    measure agree that IAGAN results are much more pleasing and sharper, in both
    noisy and noiseless scenarios"; Deblurring: "consistently exhibits the best
    perceptual quality"; Conclusion: "more accurate and perceptually pleasing
    than other alternatives".  Compared with the paper's alternatives that were
    run on each task (input = naive IFFT / blurred, bicubic, DIP, CSGM, CSGM-BP)."""
    t = _Tally(run)
    for task in run.tasks(["iagan"]):
        others = [o for o in IAGAN_ALTERNATIVES if (task, o) in run.applicable]
        if others:
            t.beats(task, "iagan", others, "lpips")
    return t.verdict("needs a task with iagan and one of " + ", ".join(IAGAN_ALTERNATIVES))


def _close(a, b, metric, tol, where, empty):
    def check(run):
        t = _Tally(run)
        for task in run.tasks([a, b], lambda x: where(run, x)):
            t.close(task, a, b, metric, tol)
        return t.verdict(empty)
    return check


def _fig2_series(run, methods):
    """``(ratios, {method: [mse per ratio]}, tally)`` over the noiseless cs_gaussian tasks."""
    t = _Tally(run)
    tasks = run.tasks(methods, lambda x: _cs_ratio(x, "gaussian") is not None and not run.noisy(x))
    tasks.sort(key=lambda x: _cs_ratio(x, "gaussian"))
    series = {m: [] for m in methods}
    for task in tasks:
        vals = t.get(task, methods, "mse") or {}
        for m in methods:
            series[m].append(vals.get(m))
    return [_cs_ratio(x, "gaussian") for x in tasks], series, t


def _fig2_text(ratios, series):
    return ("m/n " + ", ".join(f"{r:g}" for r in ratios) + ": "
            + "; ".join(f"{m} MSE " + ", ".join("—" if v is None else f"{v:.2e}" for v in s)
                        for m, s in series.items()))


def _falls(s) -> bool:
    return all(b < a for a, b in zip(s, s[1:]))


def _fig2_plateau(run):
    """Compressed Sensing section / Fig. 2 (MSE vs m/n, Gaussian A, BEGAN): "CSGM
    performance reaches a plateau in a quite small value of m, contrary to IAGAN
    error that continues to decrease".  Held when CSGM's MSE falls by less than
    PLATEAU_FALL from the median to the largest ratio and IAGAN's falls at every
    step; needs noiseless ``cs_gaussian_<ratio>`` tasks at three or more ratios."""
    ratios, s, t = _fig2_series(run, ["csgm", "iagan"])
    if len(ratios) < 3 or t.problems:
        return t.verdict(f"needs noiseless cs_gaussian_<ratio> tasks with csgm and iagan at >= 3 ratios "
                         f"(configured: {len(ratios)})")
    c = s["csgm"]
    fall = 1 - c[-1] / c[len(c) // 2]
    ok_c, ok_i = fall < PLATEAU_FALL, _falls(s["iagan"])
    t.failed = not (ok_c and ok_i)
    t.parts = [_fig2_text(ratios, s), f"csgm falls {100 * fall:.0f}% from m/n {ratios[len(c) // 2]:g} to "
               f"{ratios[-1]:g} ({'<' if ok_c else '≥'} {100 * PLATEAU_FALL:.0f}%)" + ("" if ok_c else " ✗"),
               "iagan falls at every step" if ok_i else "iagan does not fall at every step ✗"]
    return t.verdict()


def _fig2_csgm_bp(run):
    """Fig. 2: "The back-projection strategy ... makes sure that CSGM-BP is rescued
    from the plateau of CSGM": CSGM-BP's MSE falls at every increase of m/n."""
    ratios, s, t = _fig2_series(run, ["csgm_bp", "csgm"])
    if len(ratios) < 3 or t.problems:
        return t.verdict(f"needs noiseless cs_gaussian_<ratio> tasks with csgm and csgm_bp at >= 3 ratios "
                         f"(configured: {len(ratios)})")
    ok = _falls(s["csgm_bp"])
    t.failed = not ok
    t.parts = [_fig2_text(ratios, s),
               "csgm_bp falls at every step" if ok else "csgm_bp does not fall at every step ✗"]
    return t.verdict()


def _fig2_iagan_bp(run):
    """Compressed Sensing section: IAGAN's small error "when the compression ratio
    is almost 1 ... further decreases by the BP step of IAGAN-BP": at the largest
    noiseless cs_gaussian ratio, IAGAN-BP's MSE is below IAGAN's."""
    t = _Tally(run)
    tasks = run.tasks(["iagan_bp", "iagan"], lambda x: _cs_ratio(x, "gaussian") is not None and not run.noisy(x))
    if tasks:
        t.beats(max(tasks, key=lambda x: _cs_ratio(x, "gaussian")), "iagan_bp", ["iagan"], "mse")
    return t.verdict("needs a noiseless cs_gaussian_<ratio> task with iagan and iagan_bp")


def _table_beats(paper_methods, label):
    """Tables 1-4, the run's data-set columns: in every cell where the paper has
    IAGAN's PSNR above ``paper_methods``' and whose task was configured, ours too."""
    def check(run):
        from .tables import PAPER_METHOD_ALIASES, _match_task

        t = _Tally(run)
        df = run.iagan_paper
        if df is None:
            return {"status": NOT_RUN, "tasks": "", "ci": "—", "numbers": "IAGAN's tables were not given"}
        sigma = {x: run.sigma(x) for x in run.task_order}
        df = df[(df["dataset"] == run.dataset) & df["table"].astype(str).isin(["1", "2", "3", "4"])]
        for (table, task, noise), g in df.groupby(["table", "task", "noise"], sort=False):
            p = dict(zip(g["method"], g["psnr_db"]))
            for b in paper_methods:
                if "iagan" not in p or b not in p or not p["iagan"] > p[b]:
                    continue
                ours, ob = _match_task(task, noise, run.task_order, sigma), PAPER_METHOD_ALIASES.get(b, b)
                if ours is None or not {(ours, "iagan"), (ours, ob)} <= run.applicable:
                    continue
                t.beats(ours, "iagan", [ob], "psnr_mse",
                        prefix=f"{ours} [Table {table} {task} σ={noise}: paper iagan {p['iagan']:.2f} vs {b} "
                               f"{p[b]:.2f}]")
        return t.verdict(f"no configured task matches a {run.dataset} cell where the paper has IAGAN above {label}")
    return check


def _dip_often_noiseless(run):
    """SR section: "In the noiseless case, DIP often obtains better PSNR than
    IAGAN" (Table 2: 3 of 4 cells).  "Often" = on at least half of the noiseless
    tasks with both methods."""
    t = _Tally(run)
    wins = 0
    for task in run.tasks(["dip", "iagan"], lambda x: not run.noisy(x)):
        vals = t.get(task, ["dip", "iagan"], "psnr_mse")
        if vals:
            w = vals["dip"] > vals["iagan"]
            wins += w
            t.parts.append(f"{task} PSNR (dB): dip {vals['dip']:.2f} vs iagan {vals['iagan']:.2f}"
                           + ("" if w else " (iagan ahead)"))
    if t.parts:
        t.failed = 2 * wins < len(t.parts)
        t.parts.append(f"dip ahead on {wins} of {len(t.parts)}")
    return t.verdict("needs a noiseless task with dip and iagan")


def _dataset_only(ds, check):
    def wrapped(run):
        if run.dataset != ds:
            return {"status": NOT_RUN, "tasks": "", "ci": "—",
                    "numbers": f"the claim is about the paper's {ds} columns; this run is compared with {run.dataset}"}
        return check(run)
    return wrapped


def _hq_best(run):
    """Compressed Sensing section (Table 1): "For CelebA-HQ dataset our IAGAN
    clearly outperforms the other methods" (naive IFFT, DIP, CSGM)."""
    t = _Tally(run)
    for task in run.tasks(["iagan"], lambda x: task_family(x) == "cs_fourier"):
        others = [o for o in ("input", "dip", "csgm") if (task, o) in run.applicable]
        for metric in ("psnr_mse", "lpips"):
            if others:
                t.beats(task, "iagan", others, metric)
    return t.verdict("needs a cs_fourier task with iagan and input, dip or csgm")


def _misaligned(run):
    """SR section, misaligned images (BEGAN, x4): CSGM 19.18 / 0.374 vs IAGAN
    26.73 / 0.127 -- "The CSGM is highly susceptible ... while our IAGAN strategy
    is quite robust".  Held when IAGAN loses less PSNR than CSGM from ``sr<k>``
    to ``sr<k>_misaligned`` (paper: 0.43 vs 1.33 dB from Table 2's x4 row)."""
    t = _Tally(run)
    for task in run.tasks(["iagan", "csgm"], lambda x: task_family(x) == "sr_misaligned"):
        aligned = task.split("_misaligned")[0]
        if not {(aligned, "iagan"), (aligned, "csgm")} <= run.applicable:
            continue
        a, m = t.get(aligned, ["iagan", "csgm"], "psnr_mse"), t.get(task, ["iagan", "csgm"], "psnr_mse")
        if a and m:
            di, dc = a["iagan"] - m["iagan"], a["csgm"] - m["csgm"]
            t.failed |= not di < dc
            t.parts.append(f"{aligned} -> {task}: iagan {a['iagan']:.2f} -> {m['iagan']:.2f} (loss {di:+.2f}), "
                           f"csgm {a['csgm']:.2f} -> {m['csgm']:.2f} (loss {dc:+.2f}) dB" + ("" if di < dc else " ✗"))
    return t.verdict("needs sr<k> and sr<k>_misaligned with iagan and csgm")


def _runtime_overhead(run):
    """Inference run-time paragraph: IAGAN "requires only a small additional time
    compared to CSGM" (35 vs 30 s, 140 vs 120 s per image).  Our IAGAN time
    includes the CSGM stage it starts from; held when it is at most
    RUNTIME_RATIO x CSGM's on every task."""
    t = _Tally(run)
    for task in run.tasks(["iagan", "csgm"]):
        vals = t.get(task, ["iagan", "csgm"], "seconds")
        if vals and vals["csgm"] > 0:
            r = vals["iagan"] / vals["csgm"]
            t.failed |= r > RUNTIME_RATIO
            t.parts.append(f"{task}: iagan {vals['iagan']:.2f} vs csgm {vals['csgm']:.2f} s/image "
                           f"({r:.2f}x)" + ("" if r <= RUNTIME_RATIO else " ✗"))
    return t.verdict("needs a task with iagan and csgm")


def _runtime_dip(run):
    """Inference run-time paragraph: "both methods [CSGM, IAGAN] are much faster
    than DIP" (DIP ~100 s vs CSGM ~30 s, IAGAN ~35 s per image)."""
    t = _Tally(run)
    for task in run.tasks(["dip", "csgm", "iagan"]):
        t.beats(task, "iagan", ["dip"], "seconds")
        t.beats(task, "csgm", ["dip"], "seconds")
    return t.verdict("needs a task with dip, csgm and iagan")


def _noiseless_only(run, task):
    return not run.noisy(task)


CLAIMS: list[Claim] = [
    Claim("yeh.inpaint", f"{YEH}: results table (SSIM / PSNR) and its caption slide",
          "On inpainting, the GAN prior (our `yeh`, the table's 'Ours', no blending) beats TV, low-rank and sparse "
          "coding in both PSNR and SSIM.", ("yeh", *CLASSICAL), ("psnr", "ssim"), _yeh_inpaint("yeh"),
          "inpainting tasks"),
    Claim("yeh_blend.inpaint",
          f"{YEH}: results table; 'optional blending step' (method slide, inpainting visualisation)",
          "On inpainting, the GAN prior followed by the optional blending step (our `yeh_blend`) beats TV, low-rank "
          "and sparse coding in both PSNR and SSIM.", ("yeh_blend", *CLASSICAL), ("psnr", "ssim"),
          _yeh_inpaint("yeh_blend"), "inpainting tasks"),
    Claim("yeh.poor_elsewhere", f"{YEH}: results slide, 'Other than inpainting, our method seems to perform poorly "
          "under these metrics'", "Outside inpainting the GAN prior (`yeh`) does not beat the best of TV, low-rank and "
          "sparse coding: it is below or level with it in PSNR and in SSIM on every task (colourisation excluded: "
          "the table has no classical numbers there).",
          ("yeh", *CLASSICAL), ("psnr", "ssim"), _yeh_poor_elsewhere,
          "every configured task but inpainting and colourisation"),
    Claim("iagan.beats_csgm.psnr", f"{IAGAN}: Tables 1-4, Fig. 2, misaligned-SR text, Conclusion",
          "IAGAN beats CSGM in PSNR (of the mean MSE) on every task.", ("iagan", "csgm"), ("psnr_of_mean_mse",),
          _every_task_beats("iagan", ["csgm"], "psnr_mse")),
    Claim("iagan.beats_csgm.lpips", f"{IAGAN}: Tables 1-4, misaligned-SR text, Conclusion",
          "IAGAN beats CSGM in LPIPS (lower) on every task.", ("iagan", "csgm"), ("lpips",),
          _every_task_beats("iagan", ["csgm"], "lpips")),
    Claim("iagan.best_lpips", f"{IAGAN}: Super-Resolution and Deblurring sections, Conclusion",
          "IAGAN is perceptually best: its LPIPS is below that of each of the paper's alternatives run on the task "
          "(input = naive IFFT / blurred, bicubic, DIP, CSGM, CSGM-BP), noisy or not.",
          ("iagan", *IAGAN_ALTERNATIVES), ("lpips",), _iagan_best_lpips,
          "every configured task with iagan and at least one alternative"),
    Claim("csgm_bp.improves_csgm", f"{IAGAN}: Super-Resolution section ('The BP post-processing is very effective in "
          "reducing CSGM representation error when the noise level is minimal'), Table 2, Fig. 2",
          "Back-projection improves CSGM on noiseless tasks: CSGM-BP's PSNR is above CSGM's.", ("csgm_bp", "csgm"),
          ("psnr_of_mean_mse",), _every_task_beats("csgm_bp", ["csgm"], "psnr_mse", _noiseless_only,
                                                   "needs a noiseless task with csgm and csgm_bp"),
          "noiseless configured tasks"),
    Claim("iagan_bp.close_to_iagan", f"{IAGAN}: Super-Resolution section ('IAGAN and IAGAN-BP have similar "
          "recoveries'), Table 2",
          f"On noiseless tasks IAGAN-BP's PSNR is within {BP_CLOSE_DB} dB of IAGAN's (tolerance: the largest gap in "
          "Table 2, 0.42 dB, rounded up).", ("iagan_bp", "iagan"), ("psnr_of_mean_mse",),
          _close("iagan_bp", "iagan", "psnr_mse", BP_CLOSE_DB, _noiseless_only,
                 "needs a noiseless task with iagan and iagan_bp"), "noiseless configured tasks"),
    Claim("iagan_bp.beats_csgm_bp", f"{IAGAN}: 'Hard vs. Soft Compliance' section ('applying the IA phase and then "
          "the BP ... better results than only applying BP on CSGM'), Table 2",
          "On noiseless tasks IAGAN-BP's PSNR is above CSGM-BP's (the paper's own CelebA-HQ x16 cell is an "
          "exception).", ("iagan_bp", "csgm_bp"), ("psnr_of_mean_mse",),
          _every_task_beats("iagan_bp", ["csgm_bp"], "psnr_mse", _noiseless_only,
                            "needs a noiseless task with csgm_bp and iagan_bp"), "noiseless configured tasks"),
    Claim("iagan.fig2.plateau", f"{IAGAN}: Compressed Sensing section, Fig. 2 (MSE vs m/n, Gaussian A)",
          f"As m/n grows, CSGM's MSE saturates (falls by less than {100 * PLATEAU_FALL:.0f}% from the median to the "
          "largest ratio) while IAGAN's keeps falling (at every step).", ("csgm", "iagan"), ("mse_mean",),
          _fig2_plateau, "noiseless cs_gaussian_<ratio> tasks, >= 3 ratios"),
    Claim("iagan.fig2.csgm_bp_rescued", f"{IAGAN}: Compressed Sensing section, Fig. 2",
          "CSGM-BP is rescued from CSGM's plateau: its MSE falls at every increase of m/n.", ("csgm_bp", "csgm"),
          ("mse_mean",), _fig2_csgm_bp, "noiseless cs_gaussian_<ratio> tasks, >= 3 ratios"),
    Claim("iagan.fig2.iagan_bp_high_ratio", f"{IAGAN}: Compressed Sensing section, Fig. 2",
          "At the largest compression ratio, IAGAN-BP's MSE is below IAGAN's.", ("iagan_bp", "iagan"), ("mse_mean",),
          _fig2_iagan_bp, "the largest noiseless cs_gaussian_<ratio>"),
    Claim("iagan.tables.beats_bicubic", f"{IAGAN}: Tables 2-3", "IAGAN's PSNR is above bicubic's wherever the "
          "paper's table for the run's data set has it above (CelebA: x4 and x8, noiseless and 10/255).",
          ("iagan", "bicubic"), ("psnr_of_mean_mse",), _table_beats(("bicubic",), "bicubic"),
          "configured tasks matching those paper cells"),
    Claim("iagan.tables.beats_dip", f"{IAGAN}: Tables 1-4", "IAGAN's PSNR is above DIP's wherever the paper's table "
          "for the run's data set has it above.", ("iagan", "dip"), ("psnr_of_mean_mse",),
          _table_beats(("dip",), "DIP"), "configured tasks matching those paper cells"),
    Claim("iagan.tables.beats_input", f"{IAGAN}: Tables 1 and 4", "IAGAN's PSNR is above the naive IFFT (Table 1) / "
          "blurred input (Table 4), our `input`, wherever the paper has it above.", ("iagan", "input"),
          ("psnr_of_mean_mse",), _table_beats(("naive_ifft", "blurred"), "the naive / blurred input"),
          "configured tasks matching those paper cells"),
    Claim("iagan.dip_often_noiseless", f"{IAGAN}: Super-Resolution section", "In the noiseless case, DIP often "
          "(on at least half of the tasks) obtains a better PSNR than IAGAN.", ("dip", "iagan"),
          ("psnr_of_mean_mse",), _dip_often_noiseless, "noiseless configured tasks"),
    Claim("iagan.cs_fourier.dip_competitive", f"{IAGAN}: Compressed Sensing section, Table 1 (CelebA)",
          f"On CelebA compressed sensing (Fourier), DIP's PSNR is competitive with IAGAN's: within {DIP_COMPETITIVE_DB}"
          " dB (Table 1's gaps: 0.46 and 0.38 dB).", ("dip", "iagan"), ("psnr_of_mean_mse",),
          _dataset_only("celeba", _close("dip", "iagan", "psnr_mse", DIP_COMPETITIVE_DB,
                                         lambda run, x: task_family(x) == "cs_fourier",
                                         "needs a cs_fourier task with dip and iagan")), "cs_fourier tasks"),
    Claim("iagan.cs_fourier.hq_best", f"{IAGAN}: Compressed Sensing section, Table 1 (CelebA-HQ)",
          "On CelebA-HQ compressed sensing (Fourier), IAGAN beats the other methods (naive IFFT, DIP, CSGM) in PSNR "
          "and LPIPS.", ("iagan", "input", "dip", "csgm"), ("psnr_of_mean_mse", "lpips"),
          _dataset_only("celebahq", _hq_best), "cs_fourier tasks"),
    Claim("iagan.misaligned_robust", f"{IAGAN}: Super-Resolution section (misaligned images, Fig. 7)",
          "IAGAN is robust to misaligned faces where CSGM is not: from sr<k> to sr<k>_misaligned IAGAN loses less "
          "PSNR than CSGM.", ("iagan", "csgm"), ("psnr_of_mean_mse",), _misaligned, "sr<k>_misaligned tasks"),
    Claim("iagan.runtime_overhead", f"{IAGAN}: Compressed Sensing section, 'Inference run-time'",
          f"IAGAN needs only a small additional time over CSGM: at most {RUNTIME_RATIO}x CSGM's time per image "
          "(paper 1.17x).", ("iagan", "csgm"), ("seconds_per_image",), _runtime_overhead),
    Claim("iagan.runtime_vs_dip", f"{IAGAN}: Compressed Sensing section, 'Inference run-time'",
          "CSGM and IAGAN are faster than DIP.", ("dip", "csgm", "iagan"), ("seconds_per_image",), _runtime_dip),
]

CLAIM_COLUMNS = ["id", "source", "claim", "scope", "methods", "metrics", "tasks", "numbers", "status", "ci"]


def evaluate_claims(aggregates, pairs=None, task_info=None, dataset="celeba", iagan_paper=None,
                    claims=None) -> list[dict]:
    """One row per claim (:data:`CLAIM_COLUMNS`); arguments as :class:`Run`."""
    run = Run(aggregates, pairs, task_info, dataset, iagan_paper)
    rows = []
    for c in claims or CLAIMS:
        v = c.check(run)
        rows.append({"id": c.id, "source": c.source, "claim": c.statement, "scope": c.scope,
                     "methods": ", ".join(c.methods), "metrics": ", ".join(c.metrics), **v})
    return rows


# ----------------------------------------------------------------------------- writers
LEGEND = ("held / not held / not run, computed from this run's metrics.  'beats' = strictly better mean (a tie is "
          "not held); ✗ marks a comparison against the claim; '95% CIs' counts comparisons whose 95% intervals are "
          "disjoint (informative, it does not change the status).  'not run': a needed result is missing, has failed "
          "images, lacks the metric, or no configured task is in the claim's scope.")


def claims_csv(rows) -> str:
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CLAIM_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _counts(rows) -> str:
    return ", ".join(f"{sum(r['status'] == s for r in rows)} {s}" for s in (HELD, NOT_HELD, NOT_RUN))


def claims_markdown(rows, title="The papers' claims", note="") -> str:
    from .tables import md_cell

    out = [f"# {title}", "", f"{_counts(rows)}. {note} {LEGEND}".strip(), "",
           "| id | source | claim | numbers (this run) | status | 95% CIs |", "|---|---|---|---|---|---|"]
    out += ["| " + " | ".join(md_cell(r[k]) for k in ("id", "source", "claim", "numbers")) +
            f" | **{r['status']}** | {md_cell(r['ci'])} |" for r in rows]
    return "\n".join(out) + "\n"


def claims_html(rows, title="The papers' claims", note="") -> str:
    from html import escape

    from .tables import html_page

    out = ["<table>", "<tr>" + "".join(f"<th>{h}</th>" for h in
                                       ("id", "source", "claim", "numbers (this run)", "status", "95% CIs")) + "</tr>"]
    for r in rows:
        cls = r["status"].replace(" ", "-")
        out.append("<tr>" + "".join(f"<td class=\"text\">{escape(str(r[k]))}</td>"
                                    for k in ("id", "source", "claim", "numbers"))
                   + f"<td class=\"{cls}\">{escape(r['status'])}</td><td class=\"text\">{escape(r['ci'])}</td></tr>")
    out.append("</table>")
    return html_page(title, f"{_counts(rows)}. {note} {LEGEND}".strip(), "\n".join(out))


def write_claims(rows, md, csv_path, html, title="The papers' claims", note="") -> None:
    """Write the claims table as Markdown, CSV and HTML, each atomically."""
    from .io import write_text_atomic

    write_text_atomic(md, claims_markdown(rows, title, note))
    write_text_atomic(csv_path, claims_csv(rows))
    write_text_atomic(html, claims_html(rows, title, note))
