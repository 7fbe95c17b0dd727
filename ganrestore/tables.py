"""Tables: the workflow's summary of every (task, method), and the papers' layouts."""

from __future__ import annotations

import csv
import io as _io
import math

SUMMARY_COLUMNS = ["task", "method", "status", "n", "n_failed", "psnr_mean", "psnr_ci95",
                   "psnr_of_mean_mse", "ssim_mean", "ssim_ci95", "seconds_per_image"]


def _fmt(v, digits=2):
    if v is None or v == "":
        return "—"
    if isinstance(v, float):
        return "—" if math.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def summary_rows(aggregates: list[dict], pairs: list[tuple[str, str, bool]]) -> list[dict]:
    """One row per configured (task, method); ``pairs`` = (task, method, applies).

    A pair whose method does not apply to the task gets status 'n/a'; an
    applicable pair with no aggregate gets 'missing'.
    """
    by_key = {(a["task"], a["method"]): a for a in aggregates}
    rows = []
    for task, method, applies in pairs:
        a = by_key.get((task, method))
        if not applies:
            rows.append({"task": task, "method": method, "status": "n/a (method does not apply)"})
        elif a is None:
            rows.append({"task": task, "method": method, "status": "missing"})
        else:
            status = "ok" if not a.get("n_failed") else f"{a['n_failed']} failed"
            rows.append({"status": status, **{k: a.get(k) for k in SUMMARY_COLUMNS if k in a},
                         "task": task, "method": method})
    return rows


def rows_to_csv(rows: list[dict], columns: list[str] = SUMMARY_COLUMNS) -> str:
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({c: ("" if r.get(c) is None else r.get(c)) for c in columns})
    return buf.getvalue()


def rows_to_markdown(rows: list[dict], title: str = "", note: str = "") -> str:
    head = ["task", "method", "status", "n", "PSNR (dB, mean ± 95% CI)", "PSNR of mean MSE (dB)",
            "SSIM (mean ± 95% CI)", "s / image"]
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
            cells = [r["task"], r["method"], r["status"], _fmt(r.get("n")),
                     f"{_fmt(r.get('psnr_mean'))} ± {_fmt(r.get('psnr_ci95'))}",
                     _fmt(r.get("psnr_of_mean_mse")),
                     f"{_fmt(r.get('ssim_mean'), 4)} ± {_fmt(r.get('ssim_ci95'), 4)}",
                     _fmt(r.get("seconds_per_image"), 3)]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"
