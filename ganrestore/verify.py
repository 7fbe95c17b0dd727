"""Check a results tree for artifacts damaged at rest (``ganrestore verify results/<name>``).

Snakemake trusts any output that exists and is newer than its inputs, so a file
truncated or overwritten in place with its mtime kept is never remade.  This
walks a folder and checks every file it knows how to check:

* an ``.npz`` artifact against its sidecar ``<file>.npz.json``: the recorded
  size and sha256 (:func:`ganrestore.io.check_artifact`), then that it opens as
  an ``.npz`` (its members' CRCs read); an ``.npz`` without a sidecar or a
  sidecar without a checksum (written before checksums were recorded) is
  listed as unverifiable, not damaged;
* a checkpoint sidecar (``<stem>.json`` naming ``weights`` and their ``sha256``:
  GAN priors, cGANs) against its weights file;
* every other ``.json`` parses; every ``.csv`` decodes as UTF-8 and has the
  same number of fields on every row;
* a hidden temporary file of an interrupted atomic write (``.<name>.<random>``)
  is listed as left over (harmless: nothing reads it).

Each damaged file is reported with what is wrong, the rule that makes it and
how to remake it (:func:`ganrestore.io.remake_hint`).  Files it has no rule for
(PNG figures, logs, ...) are counted as not checked.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import io

#: what mkstemp names atomic_path's temporary files: ".<name>.<8 random chars><suffix>"
_TEMP = re.compile(r"^\.(.+)\.[A-Za-z0-9_]{8}(\.[A-Za-z0-9]+)?$")
#: folders never walked (Snakemake's own state, Python caches)
_SKIP_DIRS = {".snakemake", "__pycache__"}


@dataclass
class Finding:
    path: str
    kind: str          # "damaged" | "unverifiable" | "leftover"
    detail: str


@dataclass
class Report:
    root: str
    checked: int = 0
    skipped: int = 0
    findings: list[Finding] = field(default_factory=list)

    def of(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    @property
    def ok(self) -> bool:
        return not self.of("damaged")

    def lines(self) -> list[str]:
        out = [f"{f.kind.upper():12s} {f.path}: {f.detail}" for f in self.findings]
        n_bad, n_unv, n_left = len(self.of("damaged")), len(self.of("unverifiable")), len(self.of("leftover"))
        out.append(f"{self.root}: {self.checked} files checked, {n_bad} damaged, {n_unv} unverifiable, "
                   f"{n_left} leftover temporary files, {self.skipped} files of other kinds not checked")
        return out


def _checkpoint_weights(meta) -> str | None:
    if isinstance(meta, dict) and isinstance(meta.get("weights"), str) and isinstance(meta.get("sha256"), str) \
            and str(meta.get("format", "")).startswith("ganrestore-"):
        return meta["weights"]
    return None


def _check_csv(path: Path) -> str | None:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            widths = {len(row) for row in csv.reader(f) if row}
    except (UnicodeDecodeError, csv.Error, OSError) as e:
        return f"not a readable CSV ({type(e).__name__}: {e})"
    if len(widths) > 1:
        return f"not a well-formed CSV (rows of {sorted(widths)} fields)"
    return None


def verify_tree(root) -> Report:
    """Check every file under ``root`` (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    rep = Report(str(root))
    files = sorted(p for p in root.rglob("*") if p.is_file() and not _SKIP_DIRS & set(p.relative_to(root).parts))
    names = {p for p in files}
    claimed: set[Path] = set()

    def damaged(path, problem, rule=None):
        rep.findings.append(Finding(str(path), "damaged", f"{problem}. {io.remake_hint(path, rule)}"))

    for p in files:
        if p in claimed:
            continue
        if _TEMP.match(p.name):
            rep.findings.append(Finding(str(p), "leftover", "temporary file of an interrupted write; delete it"))
            continue
        if p.suffix == ".npz":
            rep.checked += 1
            side = io.sidecar_path(p)
            claimed.add(side)
            try:
                meta = io.load_meta(p)
                if side in names:
                    rep.checked += 1
                if not meta:
                    rep.findings.append(Finding(str(p), "unverifiable", "no sidecar (.npz.json) to check it against"))
                elif not meta.get("sha256"):
                    rep.findings.append(Finding(str(p), "unverifiable",
                                                "its sidecar records no checksum (written before they were)"))
                io.load_artifact(p, verify=True)
            except io.ArtifactError as e:
                damaged(e.path, e.problem, e.rule)
            continue
        if p.suffix == ".json":
            rep.checked += 1
            try:
                meta = io.read_json(p)
            except io.ArtifactError as e:
                damaged(p, e.problem, io.producer_rule(p))
                continue
            weights = _checkpoint_weights(meta)
            if weights is not None:
                wp = p.with_name(weights)
                claimed.add(wp)
                if not wp.is_file():
                    damaged(wp, f"missing (named by {p.name})", io.producer_rule(p))
                    continue
                rep.checked += 1
                got = io.sha256_file(wp)
                if got != meta["sha256"]:
                    damaged(wp, f"damaged: its sha256 is {got}, {p.name} records {meta['sha256']}",
                            io.producer_rule(p))
            continue
        if p.suffix == ".csv":
            rep.checked += 1
            why = _check_csv(p)
            if why:
                damaged(p, why)
            continue
        if p.suffix in (".safetensors",) and p.with_suffix(".json") in names:
            continue                                  # checked with its sidecar
        rep.skipped += 1
    return rep


def main(paths, as_json: bool = False, quiet: bool = False) -> int:
    """Verify each folder; print the findings; exit status 1 when any file is damaged."""
    status = 0
    reports = []
    for path in paths:
        try:
            rep = verify_tree(path)
        except FileNotFoundError as e:
            print(f"ganrestore verify: {e}")
            return 2
        reports.append(rep)
        status = status or (0 if rep.ok else 1)
        if not as_json:
            for line in rep.lines():
                if not quiet or not line.startswith(("UNVERIFIABLE", "LEFTOVER")):
                    print(line)
    if as_json:
        print(json.dumps([{"root": r.root, "checked": r.checked, "skipped": r.skipped,
                           "findings": [f.__dict__ for f in r.findings]} for r in reports], indent=1))
    return status


__all__ = ["Finding", "Report", "main", "verify_tree"]
