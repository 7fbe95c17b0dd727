"""Resumable, checksum-verified, atomic HTTP(S) downloads (incl. Google Drive).

Only the standard library (``urllib``) is used, so the library has no extra
network dependency.  The guarantees:

* **Atomic.**  Bytes go to ``<dest>.part``; the file is renamed to ``dest``
  only after it is verified: its checksum (md5 and/or sha256) matches, and its
  size equals the one the server announced.  A file whose checksum differs is
  deleted and a :class:`ChecksumError` is raised: a bad or half-written file
  never lands at ``dest``.
* **Size-checked when no checksum is given.**  Then the server must announce
  the size (``Content-Length`` of a 200, the total of a 206's
  ``Content-Range``), or the download is refused: a body cut short could not
  be told from a whole one.  The log says such a file is unverified.
* **Resumable.**  A ``.part`` left by an interrupted transfer (a dropped
  connection, a killed process) is continued with an HTTP ``Range:
  bytes=<offset>-`` request.  A server that ignores the range and answers
  ``200`` with the whole body is handled by starting over; a ``206`` whose
  ``Content-Range`` starts elsewhere, or a ``416`` whose size differs from the
  ``.part``'s, is refused and restarted too.
* **Sizes checked on every path.**  The whole file's size a response
  announces (a 200's ``Content-Length``, a 206's ``Content-Range`` total, whose
  range must agree with its ``Content-Length``) must equal ``size`` when the
  caller knows it, must fit on the disk (free space of ``dest``'s folder), and
  must not change between the attempts of one download (the file changed on
  the server: restart from 0); each is refused before a byte is written.
  Without a checksum a ``416`` to a resume is not taken as "the .part is whole"
  on its word: a one-byte probe (``Range: bytes=0-0``) must confirm the size,
  else the download restarts from 0.
* **Plain bytes only.**  ``Accept-Encoding: identity`` is sent and an answer
  with any other ``Content-Encoding`` (gzip, br, ...) is refused: its bytes
  would be stored encoded, and byte ranges of an encoded body do not resume.
* **Bounded in time per attempt.**  ``timeout`` bounds each socket operation;
  a body trickling faster than that (1 byte every 0.5 s) is cut by the
  low-speed rule (fewer than ``min_rate`` bytes/s over ``timeout`` seconds, as
  curl's ``--speed-limit`` / ``--speed-time``) and by ``attempt_deadline``
  seconds per request; both end the attempt (retried, resumed).
* **One writer per file.**  ``fcntl.flock`` on ``<dest>.lock``, a file that is
  created once and never deleted (deleting it let a waiting process and a new
  one lock two different files at once).
* **Retried, boundedly.**  Connection errors (resets, read timeouts: see
  ``timeout``), truncated bodies and HTTP 5xx / 408 / 425 / 429 are retried
  with exponential backoff (``backoff * 2**k`` seconds, at most
  :data:`BACKOFF_CAP`).  An attempt makes *progress* only when the ``.part``
  grows beyond the furthest offset persisted before (so a server that ignores
  ``Range`` and always cuts the body short makes none); after ``retries``
  consecutive attempts without progress, or ``max_attempts`` requests in all
  (default :data:`DEFAULT_MAX_ATTEMPTS`), a :class:`DownloadError` names the
  URL, the destination and the last error.  Other 4xx statuses fail at once.
* **Google Drive.**  Files larger than Drive's virus-scan limit are answered
  with an HTML warning page instead of the file; the download is confirmed
  the way torchvision's ``download_file_from_google_drive`` did before it
  switched to gdown, extended to Drive's newer page: the token comes from a
  ``download_warning*`` cookie, from the page's ``<form>`` (action URL plus the
  hidden ``id``/``export``/``confirm``/``uuid`` inputs), from a ``confirm=``
  link, or, for the bare "Virus scan warning" page, ``confirm=t``.  A "Quota
  exceeded" page raises a :class:`DownloadError` that says so, and so does a
  confirmed URL that answers with an HTML page again.

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
DEFAULT_MAX_ATTEMPTS = 30  # requests per download, progress or not (``max_attempts``)
BACKOFF_CAP = 60.0  # seconds
#: Low-speed rule: an attempt receiving fewer than this many bytes per second over a
#: window of ``timeout`` seconds is cut (and retried): a trickle defeats a socket timeout.
DEFAULT_MIN_RATE = 1024.0
#: Longest one request may run (seconds); a cut attempt resumes where it stopped.
DEFAULT_ATTEMPT_DEADLINE = 3600.0


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
    """A urllib opener with a cookie jar (Google Drive's confirmation cookie).

    ``timeout`` bounds every socket operation, so a body that stalls for that
    long fails the attempt (a read timeout) instead of hanging.
    """

    timeout: float = 60.0
    headers: dict = field(default_factory=dict)

    def __post_init__(self):
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def open(self, url: str, headers: dict | None = None):
        h = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **self.headers, **(headers or {})}
        return self.opener.open(urllib.request.Request(url, headers=h), timeout=self.timeout)


# a refused/reset/timed-out connection (URLError and socket.timeout are OSErrors too)
_NET_ERRORS = (OSError, http.client.HTTPException)


def _status(resp) -> int:
    return getattr(resp, "status", None) or resp.getcode()


def _sleep_backoff(failures: int, backoff: float, cap: float = BACKOFF_CAP) -> None:
    """Sleep ``backoff * 2**(failures-1)`` seconds, at most ``cap`` (nothing when ``backoff`` is 0)."""
    if backoff > 0:
        time.sleep(min(cap, backoff * 2 ** (failures - 1)))


class _Retry(Exception):
    """Internal: an attempt failed in a way worth retrying (the message says how)."""


def _progress_bar(total, initial, desc, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True,
                unit_divisor=1024, disable=not enabled, mininterval=1.0, leave=False)


def _content_range(value: str | None):
    """``(start, end, total)`` of ``bytes s-e/t`` or ``bytes */t``; unknown parts are ``None``."""
    m = re.match(r"\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)", value or "")
    if not m:
        return None, None, None
    num = lambda g: None if g is None or g == "*" else int(g)  # noqa: E731
    return num(m.group(1)), num(m.group(2)), num(m.group(3))


def _int(value) -> int | None:
    return int(value) if value and value.strip().isdigit() else None


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


@dataclass
class _Limits:
    """What one download checks on every response (see :func:`download_url`)."""

    size: int | None = None                 # the file's size when the caller knows it
    min_rate: float = DEFAULT_MIN_RATE
    window: float = 60.0                    # seconds of the low-speed rule (the socket timeout)
    deadline: float | None = DEFAULT_ATTEMPT_DEADLINE
    total: int | None = None                # the size announced first in this download


def _check_total(total: int | None, offset: int, part: Path, where: str, limits: _Limits) -> None:
    """The announced whole-file size against the expected one, earlier answers and the free disk."""
    import shutil

    if total is None:
        return
    if limits.size is not None and total != limits.size:
        raise DownloadError(f"{where}: the server announces {total} bytes but the file has {limits.size}; "
                            "refusing it (another file, or a lying server)")
    if limits.total is not None and total != limits.total:
        part.unlink(missing_ok=True)
        limits.total = None
        raise _Retry(f"the server announced {total} bytes, earlier {limits.total}: the file changed; "
                     "restarting from 0")
    limits.total = total
    need = total - offset
    try:
        free = shutil.disk_usage(part.parent).free
    except OSError:
        return
    if need > free:
        raise DownloadError(f"{where}: the file is {total} bytes, {need} still to fetch, but {part.parent} has "
                            f"only {free} bytes free; free space (or refuse a server announcing a size it "
                            "does not have)")


def _confirm_whole(session: Session, url: str, offset: int) -> bool:
    """Whether an independent answer says the file has exactly ``offset`` bytes: a
    ``Range: bytes=0-0`` probe's 206 total, or a 200's ``Content-Length`` (its
    body unread).  Anything else (another 416, no size) confirms nothing."""
    try:
        with contextlib.closing(session.open(url, {"Range": "bytes=0-0"})) as resp:
            status = _status(resp)
            if status == 206:
                return _content_range(resp.headers.get("Content-Range"))[2] == offset
            if status == 200:
                return _int(resp.headers.get("Content-Length")) == offset
    except urllib.error.HTTPError as e:
        e.close()
    except _NET_ERRORS:
        pass
    return False


def _fetch_once(session: Session, url: str, part: Path, dest: Path, chunk: int, progress: bool,
                need_size: bool, refuse_html: bool = False, limits: _Limits | None = None) -> int | None:
    """One request continuing ``part`` from its current size.

    Returns the whole file's size as the response announced it (a 200's
    ``Content-Length``, a 206's ``Content-Range`` total), or ``None`` when it
    announced none, which is refused with :class:`DownloadError` when
    ``need_size`` (no checksum will judge the result).  Returning means the
    body arrived as long as announced; the caller compares ``part``'s size
    with the total.  Raises :class:`_Retry` on failures worth retrying.
    """
    limits = limits or _Limits()
    where = f"{url} (to {dest})"
    offset = _size(part)
    try:
        resp = session.open(url, {"Range": f"bytes={offset}-"} if offset else {})
    except urllib.error.HTTPError as e:
        code, reason = e.code, e.reason
        total = _content_range(e.headers.get("Content-Range") if e.headers else None)[2]
        e.close()
        if code == 416 and offset:  # range not satisfiable: .part is whole, or longer than the file
            if limits.size is not None and total is not None and total != limits.size:
                total = None                                   # a size that is not the file's: redo
            if total == offset and (not need_size or _confirm_whole(session, url, offset)):
                _check_total(total, offset, part, where, limits)
                return total
            if total is None and not need_size:
                return None                                    # the checksum judges the .part
            part.unlink(missing_ok=True)
            raise _Retry(f"HTTP 416 for bytes={offset}- (file size {total}"
                         + (", not confirmed by a probe" if total == offset else "")
                         + "); restarting from 0") from None
        if code in RETRY_STATUS or 500 <= code < 600:
            raise _Retry(f"HTTP {code} {reason}") from None
        raise DownloadError(f"HTTP {code} {reason} for {where}") from None
    except _NET_ERRORS as e:
        raise _Retry(f"{type(e).__name__}: {getattr(e, 'reason', e)}") from None

    received = 0
    with contextlib.closing(resp):
        status = _status(resp)
        length = _int(resp.headers.get("Content-Length"))
        encoding = (resp.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise DownloadError(f"{where}: the server answered with Content-Encoding: {encoding} although "
                                "identity was requested; its bytes would be stored encoded (and byte ranges "
                                "of an encoded body do not resume), so the answer is refused")
        if refuse_html and "text/html" in resp.headers.get("Content-Type", "").lower() \
                and "attachment" not in resp.headers.get("Content-Disposition", "").lower():
            raise DownloadError(f"{where} answered with an HTML page instead of the file")
        if status == 206:
            cr = resp.headers.get("Content-Range")
            start, end, total = _content_range(cr)
            if start != offset:
                part.unlink(missing_ok=True)
                raise _Retry(f"server answered range {cr!r} for bytes={offset}-; restarting from 0")
            span = None if end is None else end + 1 - start
            if length is not None and span is not None and length != span:
                raise _Retry(f"server answered range {cr!r} with Content-Length {length}; retrying")
            if total is not None and end is not None and end >= total:
                part.unlink(missing_ok=True)
                raise _Retry(f"server answered range {cr!r}, past its own total; restarting from 0")
            expected = length if length is not None else span
            mode = "ab"
        elif status == 200:
            if offset:
                log.info("%s: server ignored the Range request (200); restarting from 0", dest.name)
            offset, mode, total, expected = 0, "wb", length, length
        else:
            raise DownloadError(f"unexpected HTTP {status} for {where}")
        if total is None and need_size:
            raise DownloadError(
                f"{where}: no checksum was given and the server announced no size (no Content-Length"
                + (", no Content-Range total" if status == 206 else "")
                + "), so a truncated file could not be told from a complete one; refusing it. "
                "Give an md5 or sha256 for this file.")
        _check_total(total, offset, part, where, limits)
        bar = _progress_bar(total, offset, dest.name, progress)
        t0 = window_t = time.monotonic()
        window_bytes = 0
        try:
            with open(part, mode) as f:
                while True:
                    try:  # read1: whatever has arrived, so a stall loses nothing received
                        block = resp.read1(chunk)
                    except _NET_ERRORS as e:  # reset, read timeout, IncompleteRead
                        raise _Retry(f"connection lost after {offset + received} bytes: "
                                     f"{type(e).__name__}: {e}") from None
                    if not block:
                        break
                    f.write(block)
                    received += len(block)
                    window_bytes += len(block)
                    bar.update(len(block))
                    now = time.monotonic()
                    if limits.deadline is not None and now - t0 > limits.deadline:
                        raise _Retry(f"attempt deadline of {limits.deadline:g} s reached after "
                                     f"{offset + received} bytes")
                    if now - window_t >= limits.window:
                        if window_bytes < limits.min_rate * (now - window_t):
                            raise _Retry(f"too slow: {window_bytes} bytes in {now - window_t:.1f} s (below "
                                         f"{limits.min_rate:g} bytes/s) after {offset + received} bytes")
                        window_t, window_bytes = now, 0
        finally:
            bar.close()
        if expected is not None and received < expected:
            raise _Retry(f"truncated body: {received} of {expected} bytes")
    return total


def download_url(url: str, dest, md5: str | None = None, sha256: str | None = None, *,
                 retries: int = 5, backoff: float = 1.0, timeout: float = 60.0,
                 chunk: int = 1 << 20, progress: bool = True, session: Session | None = None,
                 hint: str = "", max_attempts: int | None = None, refuse_html: bool = False,
                 size: int | None = None, min_rate: float = DEFAULT_MIN_RATE,
                 attempt_deadline: float | None = DEFAULT_ATTEMPT_DEADLINE) -> Path:
    """Download ``url`` to ``dest`` (resume, retry, verify, atomic rename); return ``dest``.

    An existing ``dest`` that passes the checksums (or, with none given, any
    existing ``dest``: only verified files are ever renamed there) is kept
    without network access.  ``retries`` bounds consecutive attempts without
    progress, ``max_attempts`` (default ``max(DEFAULT_MAX_ATTEMPTS, retries +
    1)``) all requests; ``backoff`` is the first retry delay in seconds (0: no
    sleeping).  ``refuse_html`` rejects an HTML page served instead of the file.
    ``hint`` is appended to error messages (e.g. where else to get the file).
    ``size``: the file's size when known (an announced size that differs is
    refused); ``min_rate`` (bytes/s over ``timeout``-second windows) and
    ``attempt_deadline`` (seconds) cut an attempt that trickles (see the module
    docstring).
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
    limit = max_attempts or max(DEFAULT_MAX_ATTEMPTS, retries + 1)
    need_size = not (md5 or sha256)
    limits = _Limits(size=None if size is None else int(size), min_rate=float(min_rate),
                     window=float(session.timeout), deadline=attempt_deadline)
    used = 0
    with _file_lock(dest):
        # A .part left by an earlier run may belong to another version of the
        # file: if the resumed result fails its checksum, start over once.
        stale = part.exists() and part.stat().st_size > 0
        while True:
            used = _transfer(session, url, part, dest, chunk=chunk, progress=progress,
                             need_size=need_size, refuse_html=refuse_html, retries=retries,
                             backoff=backoff, used=used, limit=limit, hint=hint, limits=limits)
            if not part.exists():
                part.touch()
            if limits.size is not None and part.stat().st_size != limits.size:
                got = part.stat().st_size
                part.unlink(missing_ok=True)
                raise DownloadError(f"download of {dest.name} from {url}: {got} bytes received, the file has "
                                    f"{limits.size}" + (f". {hint}" if hint else ""))
            try:
                check_file(part, md5, sha256, hint=hint, name=dest.name)
                break
            except ChecksumError:
                part.unlink(missing_ok=True)
                if not stale or used >= limit:
                    raise
                log.warning("%s: resumed partial file from an earlier run fails its checksum; "
                            "downloading from scratch", dest.name)
                stale = False
        if need_size:
            log.warning("%s: no checksum given; the file is unverified (size-checked only: %d bytes, "
                        "as announced by %s)", dest, part.stat().st_size, url)
        os.replace(part, dest)
    return dest


def _transfer(session, url, part: Path, dest: Path, *, chunk, progress, need_size, refuse_html,
              retries, backoff, used, limit, hint, limits: _Limits | None = None) -> int:
    """Fetch until ``part`` holds the whole file; return ``used`` plus the requests made.

    Progress means ``part`` grew beyond the furthest offset persisted so far
    (a restart from zero that ends short of it is none).  Gives up with a
    :class:`DownloadError` after ``retries`` consecutive attempts without
    progress or when ``limit`` requests have been made in all (``used`` of them
    before this call), whichever comes first.
    """
    high = _size(part)
    made, stalled = used, 0
    while True:
        made += 1
        try:
            total = _fetch_once(session, url, part, dest, chunk, progress, need_size, refuse_html, limits)
            size = _size(part)
            if total is None or size == total:
                return made
            if size > total:
                part.unlink(missing_ok=True)
                raise _Retry(f"{size} bytes on disk but the file has {total}; restarting from 0")
            raise _Retry(f"{size} of {total} bytes after the response ended")
        except _Retry as r:
            last = str(r)
        size = _size(part)
        high, stalled = (size, 0) if size > high else (high, stalled + 1)
        why = (f"failed after {retries} retries" if stalled > retries else
               f"gave up after {made} attempts (max_attempts)" if made >= limit else None)
        if why:
            raise DownloadError(
                f"download of {dest.name} from {url} to {dest} {why}: {last}"
                + (f". The partial file {part} ({size} bytes) is kept and will be resumed next time."
                   if part.exists() else "") + (f" {hint}" if hint else "")) from None
        log.warning("%s: %s; retry %d/%d (attempt %d of at most %d)", dest.name, last, stalled,
                    retries, made + 1, limit)
        _sleep_backoff(max(stalled, 1), backoff)


@contextlib.contextmanager
def _file_lock(dest: Path):
    """Exclusive advisory lock (``fcntl.flock``) on ``<dest>.lock`` (POSIX), so two jobs
    never share a ``.part``.

    The lock file is persistent: created once, never deleted.  Deleting it on
    release let a process that was waiting on the old file's lock and a new one
    that created a fresh file both hold "the" lock at once."""
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
                   backoff: float = 1.0, hint: str = "", *, dest=None) -> str:
    """The URL that serves the file's bytes (after Drive's confirmation step, if any).

    Makes at most ``retries + 1`` requests (5xx, resets and timeouts, reading
    the page included, are retried with backoff); ``dest`` is named in errors.
    """
    url = gdrive_url(file_id, base)
    where = f"Google Drive file {file_id} ({url}" + (f", to {dest})" if dest else ")")
    failures = 0
    while True:
        try:
            with contextlib.closing(session.open(url)) as resp:
                ctype = resp.headers.get("Content-Type", "")
                disposition = resp.headers.get("Content-Disposition", "")
                if "attachment" in disposition.lower() or "text/html" not in ctype.lower():
                    return resp.geturl()  # the file itself: download it (with Range) from here
                page = resp.read(4 << 20).decode("utf-8", "replace")
                page_url = resp.geturl()
            break
        except urllib.error.HTTPError as e:
            code = e.code
            e.close()
            if not (code in RETRY_STATUS or 500 <= code < 600):
                raise DownloadError(f"{where}: HTTP {code}. {hint}") from None
            last = f"HTTP {code}"
        except _NET_ERRORS as e:
            last = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
        failures += 1
        if failures > retries:
            raise DownloadError(f"{where}: {last} after {retries} retries. {hint}")
        _sleep_backoff(failures, backoff)
    title = _html_title(page) or ""
    if "quota exceeded" in title.lower() or "too many users" in page.lower():
        raise DownloadError(
            f"{where}: Google Drive refuses the file for now (download quota exceeded). "
            f"Try again in 24 hours or download it in a browser. {hint}")
    confirmed = parse_gdrive_warning(page, page_url, file_id, list(session.cookies))
    if confirmed is None:
        raise DownloadError(
            f"{where}: Google Drive answered with an HTML page ({title or 'no title'!r}) "
            f"and no download confirmation in it. {hint}")
    return confirmed


def download_gdrive(file_id: str, dest, md5: str | None = None, sha256: str | None = None, *,
                    base: str = GDRIVE_BASE, retries: int = 5, backoff: float = 1.0,
                    timeout: float = 60.0, progress: bool = True, hint: str = "",
                    max_attempts: int | None = None, size: int | None = None) -> Path:
    """Download a Google Drive file (large-file confirmation included) to ``dest``.

    Same guarantees as :func:`download_url`; a ``dest`` that already verifies
    is kept without network access.  A confirmed URL that answers with yet
    another HTML page is refused rather than saved as the file.  At most
    ``retries + 1`` requests resolve the URL and ``max_attempts`` fetch it.
    """
    dest = Path(dest)
    if dest.is_file() and (md5 or sha256):
        with contextlib.suppress(ChecksumError):
            check_file(dest, md5, sha256)
            return dest
    session = Session(timeout=timeout)
    url = resolve_gdrive(file_id, session, base, retries, backoff, hint, dest=dest)
    return download_url(url, dest, md5, sha256, retries=retries, backoff=backoff,
                        progress=progress, session=session, hint=hint, max_attempts=max_attempts,
                        refuse_html=True, size=size)


__all__ = ["ChecksumError", "DEFAULT_MAX_ATTEMPTS", "DownloadError", "GDRIVE_BASE", "Session", "check_file",
           "check_file_cached", "download_gdrive", "download_url", "file_digests", "gdrive_url",
           "parse_gdrive_warning", "resolve_gdrive", "verified_cache_ok"]
