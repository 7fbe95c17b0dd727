"""Resumable, checksum-verified, atomic HTTP(S) downloads (incl. Google Drive).

Only the standard library (``urllib``) is used, so the library has no extra
network dependency.  The guarantees:

* **Atomic.**  Bytes go to ``<dest>.part``; the file is renamed to ``dest``
  only after its checksum (md5 and/or sha256) matches.  A file whose checksum
  differs is deleted and a :class:`ChecksumError` is raised: a bad file never
  lands at ``dest``.
* **Resumable.**  A ``.part`` left by an interrupted transfer (a dropped
  connection, a killed process) is continued with an HTTP ``Range:
  bytes=<offset>-`` request.  A server that ignores the range and answers
  ``200`` with the whole body is handled by starting over; a ``206`` whose
  ``Content-Range`` starts elsewhere is refused and restarted too.
* **Retried.**  Connection errors, truncated bodies and HTTP 5xx / 408 / 429
  are retried with exponential backoff (``backoff * 2**k`` seconds, capped);
  the counter restarts whenever an attempt made progress.  After ``retries``
  failed attempts without progress a :class:`DownloadError` names the URL, the
  destination and the last error.  Other 4xx statuses fail at once.
* **Google Drive.**  Files larger than Drive's virus-scan limit are answered
  with an HTML warning page instead of the file; the download is confirmed
  the way torchvision's ``download_file_from_google_drive`` did before it
  switched to gdown, extended to Drive's newer page: the token comes from a
  ``download_warning*`` cookie, from the page's ``<form>`` (action URL plus the
  hidden ``id``/``export``/``confirm``/``uuid`` inputs), from a ``confirm=``
  link, or, for the bare "Virus scan warning" page, ``confirm=t``.  A "Quota
  exceeded" page raises a :class:`DownloadError` that says so.

The base URLs are parameters (``gdrive_base``), so tests point everything at a
server on ``127.0.0.1``.

>>> from ganrestore.data.download import gdrive_url
>>> gdrive_url("abc", base="http://127.0.0.1:8000/uc")
'http://127.0.0.1:8000/uc?export=download&id=abc'
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import http.client
import http.cookiejar
import logging
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

GDRIVE_BASE = "https://drive.google.com/uc"
USER_AGENT = "ganrestore-downloader/0.1 (+python-urllib)"
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class DownloadError(RuntimeError):
    """A download failed for good (after retries, or a status that is not retried)."""


class ChecksumError(DownloadError):
    """A file's checksum differs from the one on record."""


# ----------------------------------------------------------------------------------------
# checksums


def file_digests(path, algorithms=("md5", "sha256"), chunk: int = 1 << 20) -> dict[str, str]:
    """Hex digests of ``path`` for each algorithm, in one pass over the file."""
    hs = {a: (hashlib.md5(usedforsecurity=False) if a == "md5" else hashlib.new(a))
          for a in algorithms}
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            for h in hs.values():
                h.update(block)
    return {a: h.hexdigest() for a, h in hs.items()}


def check_file(path, md5: str | None = None, sha256: str | None = None,
               hint: str = "", name: str | None = None) -> dict[str, str]:
    """Verify ``path`` against the given checksums; return its digests.

    Raises :class:`FileNotFoundError` when it is missing and
    :class:`ChecksumError` (naming the file, both checksums and ``hint``, e.g.
    where to get a good copy) when a checksum differs.
    """
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise FileNotFoundError(f"{name}: not found at {path}" + (f". {hint}" if hint else ""))
    algos = ["md5", "sha256"]
    got = file_digests(path, algos)
    for algo, want in (("md5", md5), ("sha256", sha256)):
        if want and got[algo].lower() != want.lower():
            raise ChecksumError(
                f"{name}: {algo} mismatch for {path}: expected {want}, got {got[algo]} "
                f"({path.stat().st_size} bytes)" + _html_note(path) + (f". {hint}" if hint else ""))
    return got


def _html_note(path) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(512).lstrip()
    except OSError:
        return ""
    if head.lower().startswith((b"<!doctype html", b"<html")):
        return (" -- the server sent an HTML page instead of the file (for Google Drive: "
                "the daily quota may be exceeded or the sharing settings changed)")
    return ""


def verified_cache_ok(path, md5=None, sha256=None) -> bool:
    """True when ``path`` was verified before and has not changed since.

    A successful :func:`check_file_cached` writes ``<path>.verified`` holding
    the checksums with the file's size and mtime, so a 1.4 GB archive is not
    re-hashed on every run.  Anything that differs (size, mtime, expected
    checksums) forces a full check.
    """
    import json

    path = Path(path)
    stamp = path.with_name(path.name + ".verified")
    if not (path.is_file() and stamp.is_file()):
        return False
    try:
        rec = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    st = path.stat()
    if rec.get("size") != st.st_size or rec.get("mtime_ns") != st.st_mtime_ns:
        return False
    for algo, want in (("md5", md5), ("sha256", sha256)):
        if want and rec.get(algo, "").lower() != want.lower():
            return False
    return True


def check_file_cached(path, md5=None, sha256=None, hint: str = "", name=None) -> dict[str, str]:
    """:func:`check_file`, skipped when a ``.verified`` stamp shows the file unchanged."""
    import json

    from ..io import write_json_atomic

    path = Path(path)
    stamp = path.with_name(path.name + ".verified")
    if verified_cache_ok(path, md5, sha256):
        rec = json.loads(stamp.read_text())
        return {"md5": rec["md5"], "sha256": rec["sha256"]}
    got = check_file(path, md5, sha256, hint=hint, name=name)
    st = path.stat()
    try:
        write_json_atomic(stamp, {**got, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    except OSError:  # read-only location (a user's archive): just don't cache
        pass
    return got


# ----------------------------------------------------------------------------------------
# HTTP plumbing


@dataclass
class Session:
    """A urllib opener with a cookie jar (Google Drive's confirmation cookie)."""

    timeout: float = 60.0
    headers: dict = field(default_factory=dict)

    def __post_init__(self):
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def open(self, url: str, headers: dict | None = None):
        h = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **self.headers, **(headers or {})}
        return self.opener.open(urllib.request.Request(url, headers=h), timeout=self.timeout)


def _status(resp) -> int:
    return getattr(resp, "status", None) or resp.getcode()


def _sleep_backoff(failures: int, backoff: float, cap: float = 60.0) -> None:
    if backoff > 0:
        time.sleep(min(cap, backoff * 2 ** (failures - 1)))


class _Retry(Exception):
    """Internal: an attempt failed in a way worth retrying."""


def _progress_bar(total, initial, desc, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True,
                unit_divisor=1024, disable=not enabled, mininterval=1.0, leave=False)


def _content_range_start(value: str | None):
    m = re.match(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)", value or "")
    if not m:
        return None, None
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), total


def _fetch_once(session: Session, url: str, part: Path, chunk: int, progress: bool, desc: str) -> int:
    """One attempt: continue ``part`` from its current size; return bytes received.

    Raises :class:`_Retry` (with the bytes received as ``args[1]``) on errors
    worth retrying and :class:`DownloadError` on those that are not.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        resp = session.open(url, headers)
    except urllib.error.HTTPError as e:
        code = e.code
        e.close()
        if code == 416 and offset:  # range not satisfiable: .part is already whole (or junk)
            return 0
        if code in RETRY_STATUS or 500 <= code < 600:
            raise _Retry(f"HTTP {code} {e.reason}", 0) from None
        raise DownloadError(f"HTTP {code} {e.reason} for {url}") from None
    except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError,
            http.client.HTTPException) as e:
        raise _Retry(f"{type(e).__name__}: {getattr(e, 'reason', e)}", 0) from None

    received = 0
    with contextlib.closing(resp):
        status = _status(resp)
        length = resp.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if status == 206:
            start, total = _content_range_start(resp.headers.get("Content-Range"))
            if start != offset:
                log.warning("%s: server answered range %s for offset %d; restarting",
                            desc, resp.headers.get("Content-Range"), offset)
                part.unlink(missing_ok=True)
                raise _Retry("bad Content-Range", 0)
            mode = "ab"
        elif status == 200:
            if offset:
                log.info("%s: server ignored the Range request (200); restarting from 0", desc)
            offset, mode, total = 0, "wb", length
        else:
            raise DownloadError(f"unexpected HTTP {status} for {url}")
        expected = length  # bytes this response should carry
        bar = _progress_bar(total, offset, desc, progress)
        try:
            with open(part, mode) as f:
                while True:
                    try:
                        block = resp.read(chunk)
                    except (http.client.IncompleteRead, ConnectionError, socket.timeout,
                            TimeoutError, OSError) as e:
                        raise _Retry(f"connection lost after {offset + received} bytes: "
                                     f"{type(e).__name__}", received) from None
                    if not block:
                        break
                    f.write(block)
                    received += len(block)
                    bar.update(len(block))
        finally:
            bar.close()
        if expected is not None and received < expected:
            raise _Retry(f"truncated body: {received} of {expected} bytes", received)
    return received


def download_url(url: str, dest, md5: str | None = None, sha256: str | None = None, *,
                 retries: int = 5, backoff: float = 1.0, timeout: float = 60.0,
                 chunk: int = 1 << 20, progress: bool = True, session: Session | None = None,
                 hint: str = "") -> Path:
    """Download ``url`` to ``dest`` (resume, retry, verify, atomic rename); return ``dest``.

    An existing ``dest`` that passes the checksums is kept without any network
    access.  ``hint`` is appended to error messages (e.g. where else to get the
    file).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file() and (md5 or sha256):
        try:
            check_file(dest, md5, sha256)
            return dest
        except ChecksumError:
            log.warning("%s exists but fails its checksum; downloading again", dest)
            dest.unlink()
    elif dest.is_file():
        return dest
    session = session or Session(timeout=timeout)
    part = dest.with_name(dest.name + ".part")
    with _file_lock(dest):
        # A .part left by an earlier run may belong to another version of the
        # file: if the resumed result fails its checksum, start over once.
        stale = part.exists() and part.stat().st_size > 0
        while True:
            _transfer(session, url, part, chunk, progress, dest.name, retries, backoff, hint)
            if not part.exists():
                part.touch()
            try:
                check_file(part, md5, sha256, hint=hint, name=dest.name)
                break
            except ChecksumError:
                part.unlink(missing_ok=True)
                if not stale:
                    raise
                log.warning("%s: resumed partial file from an earlier run fails its checksum; "
                            "downloading from scratch", dest.name)
                stale = False
        os.replace(part, dest)
    return dest


def _transfer(session, url, part, chunk, progress, name, retries, backoff, hint) -> None:
    """Fetch until ``part`` holds the whole body, retrying (and resuming) failed attempts."""
    failures, last = 0, ""
    while True:
        try:
            _fetch_once(session, url, part, chunk, progress, name)
            return
        except _Retry as r:
            last = r.args[0]
            failures = 1 if r.args[1] > 0 else failures + 1
            if failures > retries:
                raise DownloadError(
                    f"download of {name} from {url} failed after {retries} retries: {last}"
                    + (f". The partial file {part} is kept and will be resumed next time."
                       if part.exists() else "")
                    + (f" {hint}" if hint else "")) from None
            log.warning("%s: %s; retry %d/%d", name, last, failures, retries)
            _sleep_backoff(failures, backoff)


@contextlib.contextmanager
def _file_lock(dest: Path):
    """Exclusive advisory lock on ``<dest>.lock`` (POSIX), so two jobs never share a ``.part``."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    lock = dest.with_name(dest.name + ".lock")
    with open(lock, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    with contextlib.suppress(OSError):
        lock.unlink()


# ----------------------------------------------------------------------------------------
# Google Drive


def gdrive_url(file_id: str, base: str = GDRIVE_BASE) -> str:
    """The direct-download URL of a Drive file id."""
    return f"{base}?{urllib.parse.urlencode({'export': 'download', 'id': file_id})}"


def _html_title(text: str) -> str | None:
    m = re.search(r"<title>\s*(?:Google Drive\s*-\s*)?(.+?)\s*</title>", text, re.I | re.S)
    return m.group(1).strip() if m else None


def parse_gdrive_warning(page: str, page_url: str, file_id: str, cookies=()) -> str | None:
    """The confirmed download URL from a Drive warning page, or ``None`` if none is found.

    Checked in order: a ``download_warning*`` cookie (older Drive, the token
    torchvision read); the page's download ``<form>`` (newer Drive: action URL
    plus hidden inputs, among them ``confirm`` and ``uuid``); an ``href``
    carrying ``confirm=``; a bare ``confirm=...`` token in the page; the
    "Virus scan warning" title alone, which Drive accepts with ``confirm=t``.
    """
    base = page_url.split("?", 1)[0]
    for c in cookies:
        if c.name.startswith("download_warning"):
            return f"{base}?{urllib.parse.urlencode({'export': 'download', 'confirm': c.value, 'id': file_id})}"
    form = re.search(r"<form\b[^>]*\baction=[\"']([^\"']+)[\"'][^>]*>(.*?)</form>", page, re.I | re.S)
    if form:
        inputs = dict(re.findall(r"<input\b[^>]*?\bname=[\"']([^\"']+)[\"'][^>]*?\bvalue=[\"']([^\"']*)[\"']",
                                 form.group(2), re.I))
        # also accept value= before name=
        for v, n in re.findall(r"<input\b[^>]*?\bvalue=[\"']([^\"']*)[\"'][^>]*?\bname=[\"']([^\"']+)[\"']",
                               form.group(2), re.I):
            inputs.setdefault(n, v)
        if "confirm" in inputs or "uuid" in inputs:
            inputs = {k: html.unescape(v) for k, v in inputs.items()}
            inputs.setdefault("id", file_id)
            action = urllib.parse.urljoin(page_url, html.unescape(form.group(1)))
            sep = "&" if "?" in action else "?"
            return f"{action}{sep}{urllib.parse.urlencode(inputs)}"
    m = re.search(r"href=[\"']([^\"']*confirm=[^\"']+)[\"']", page, re.I)
    if m:
        return urllib.parse.urljoin(page_url, html.unescape(m.group(1)))
    m = re.search(r"confirm=([0-9A-Za-z_-]+)", page)
    if m:
        params = {"export": "download", "confirm": m.group(1), "id": file_id}
        u = re.search(r"uuid=([0-9A-Za-z_-]+)", page)
        if u:
            params["uuid"] = u.group(1)
        return f"{base}?{urllib.parse.urlencode(params)}"
    if (_html_title(page) or "").lower().startswith("virus scan warning"):
        return f"{base}?{urllib.parse.urlencode({'export': 'download', 'confirm': 't', 'id': file_id})}"
    return None


def resolve_gdrive(file_id: str, session: Session, base: str = GDRIVE_BASE, retries: int = 5,
                   backoff: float = 1.0, hint: str = "") -> str:
    """The URL that serves the file's bytes (after Drive's confirmation step, if any)."""
    url = gdrive_url(file_id, base)
    failures = 0
    while True:
        try:
            resp = session.open(url)
            break
        except urllib.error.HTTPError as e:
            code = e.code
            e.close()
            if not (code in RETRY_STATUS or 500 <= code < 600):
                raise DownloadError(f"Google Drive file {file_id}: HTTP {code} for {url}. {hint}") from None
            last = f"HTTP {code}"
        except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError,
                http.client.HTTPException) as e:
            last = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
        failures += 1
        if failures > retries:
            raise DownloadError(f"Google Drive file {file_id}: {last} after {retries} retries. {hint}")
        _sleep_backoff(failures, backoff)
    with contextlib.closing(resp):
        ctype = resp.headers.get("Content-Type", "")
        disposition = resp.headers.get("Content-Disposition", "")
        if "attachment" in disposition.lower() or "text/html" not in ctype.lower():
            return resp.geturl()  # the file itself: download it (with Range) from here
        page = resp.read(4 << 20).decode("utf-8", "replace")
        page_url = resp.geturl()
    title = _html_title(page) or ""
    if "quota exceeded" in title.lower() or "too many users" in page.lower():
        raise DownloadError(
            f"Google Drive refuses file {file_id} for now (download quota exceeded). "
            f"Try again in 24 hours or download it in a browser. {hint}")
    confirmed = parse_gdrive_warning(page, page_url, file_id, list(session.cookies))
    if confirmed is None:
        raise DownloadError(
            f"Google Drive answered file {file_id} with an HTML page ({title or 'no title'!r}) "
            f"and no download confirmation in it. {hint}")
    return confirmed


def download_gdrive(file_id: str, dest, md5: str | None = None, sha256: str | None = None, *,
                    base: str = GDRIVE_BASE, retries: int = 5, backoff: float = 1.0,
                    timeout: float = 60.0, progress: bool = True, hint: str = "") -> Path:
    """Download a Google Drive file (large-file confirmation included) to ``dest``.

    Same guarantees as :func:`download_url`; a ``dest`` that already verifies
    is kept without network access.
    """
    dest = Path(dest)
    if dest.is_file() and (md5 or sha256):
        with contextlib.suppress(ChecksumError):
            check_file(dest, md5, sha256)
            return dest
    session = Session(timeout=timeout)
    url = resolve_gdrive(file_id, session, base, retries, backoff, hint)
    return download_url(url, dest, md5, sha256, retries=retries, backoff=backoff,
                        progress=progress, session=session, hint=hint)


__all__ = ["ChecksumError", "DownloadError", "GDRIVE_BASE", "Session", "check_file",
           "check_file_cached", "download_gdrive", "download_url", "file_digests", "gdrive_url",
           "parse_gdrive_warning", "resolve_gdrive", "verified_cache_ok"]
