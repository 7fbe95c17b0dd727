"""Public prior checkpoints: fetched (URL + sha256, resumable) or taken from a local
file, verified, and converted once to the project's checkpoint format.

The configuration (``prior.fetch``, config/schema.yaml)::

    url: https://dl.fbaipublicfiles.com/gan_zoo/PGAN/celebaHQ_s6_i80000-6196db68.pth
    sha256: 6196db68        # the full hex digest, or a prefix of at least 8 digits
    file: null              # a copy you already have (checked the same way), instead of downloading
    format: pgan_zoo        # what the file is (pytorch_GAN_zoo PGAN: ganrestore.priors.pgan)
    generator: avgG         # which generator of the file (avgG: the zoo's advice; netG)
    root: results/downloads/priors

``sha256`` should be the full digest.  A prefix is accepted only as a file-name
convention: the public zoo files carry the first 8 hex digits of their sha256
in their names (torch.hub's ``<name>-<prefix>.pth``, which
``torch.hub.download_url_to_file`` checks) and publish nothing more, so a
prefix must be the one the file's name carries (:func:`name_hash_prefix`),
else it is refused before anything is fetched.  A file checked against a
prefix only (32 bits) is logged with its full digest (set it as
``prior.fetch.sha256`` to verify it in full), and the full digest is recorded
beside the file (``<file>.verified``): from then on the full digest is known and
the file is verified against it, not against the prefix.  The download goes
through :func:`ganrestore.data.download.download_url` (resume with HTTP Range
after a dropped connection or a killed run, bounded retries, atomic rename):
with a full digest that function verifies it; with a prefix the file is
downloaded under ``<root>/.unverified/`` and moved to ``<root>/<file>`` only
after its sha256 starts with the prefix.  A mismatch deletes the file and
raises :class:`ChecksumError` naming the URL, the file, the expected and the
actual hash.  A file never lands at ``<root>/<file>`` unverified.

>>> name_hash_prefix("https://x/celebaHQ_s6_i80000-6196db68.pth")
'6196db68'
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from ..data.download import ChecksumError, download_url, file_digests

log = logging.getLogger(__name__)

FORMATS = ("pgan_zoo",)
HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.[A-Za-z0-9]+$")
DEFAULT_ROOT = "results/downloads/priors"


def file_name(url: str) -> str:
    """The file name a URL serves (its last path component)."""
    name = Path(urlsplit(url).path).name
    if not name:
        raise ValueError(f"cannot tell a file name from the URL {url!r}")
    return name


def name_hash_prefix(url_or_name: str) -> str | None:
    """The sha256 prefix in a torch.hub-style file name (``...-<hex>.pth``), or None."""
    m = HASH_IN_NAME.search(Path(urlsplit(str(url_or_name)).path).name)
    return m.group(1) if m else None


def check_expected(expected: str, name: str | None) -> str:
    """``expected`` lower-cased when it is a full digest, or a prefix equal to the
    one ``name`` (a URL or file name) carries; else ``ValueError`` saying why."""
    expected = str(expected).lower()
    if not re.fullmatch(r"[0-9a-f]{8,64}", expected):
        raise ValueError(f"sha256 must be 8 to 64 hex digits, got {expected!r}")
    if len(expected) == 64:
        return expected
    carried = name_hash_prefix(name) if name else None
    if carried is None or not (carried.startswith(expected) or expected.startswith(carried)) \
            or len(expected) < 8:
        raise ValueError(
            f"prior.fetch.sha256: {expected!r} is a prefix, accepted only as the file-name convention "
            f"(torch.hub: <name>-<first hex digits of the sha256>.pth), but "
            + (f"the file name {Path(urlsplit(str(name)).path).name!r} carries {carried!r}" if carried
               else f"the file name {Path(urlsplit(str(name or '')).path).name!r} carries none")
            + "; give the full 64-hex-digit sha256")
    return expected


def _stamp(path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".verified")


def known_full_digest(path) -> str | None:
    """The full sha256 recorded beside ``path`` by an earlier verification (None when none)."""
    import json

    try:
        rec = json.loads(_stamp(path).read_text())
    except (OSError, ValueError):
        return None
    sha = rec.get("sha256") if isinstance(rec, dict) else None
    return sha if isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha) else None


def _record_full_digest(path, digest: str) -> None:
    from ..io import write_json_atomic

    try:
        write_json_atomic(_stamp(path), {"sha256": digest, "size": Path(path).stat().st_size})
    except OSError:           # a read-only copy of the user's: nothing recorded, checked again next time
        pass


def check_sha256(path, expected: str, *, url: str | None = None) -> str:
    """The file's sha256 if it equals ``expected`` (a full digest) or, for a prefix
    (:func:`check_expected`: only the one the file's name carries), starts with it
    and equals the full digest recorded beside the file by an earlier check, if
    any; else :class:`ChecksumError` naming the file, the URL and both hashes."""
    expected = check_expected(expected, url or str(path))
    got = file_digests(path, ("sha256",))["sha256"]
    full = expected if len(expected) == 64 else known_full_digest(path)
    if full is not None and full.startswith(expected) and got == full:
        return got
    if full is None and got.startswith(expected):
        log.warning("%s: only the sha256 prefix %s in its name was checked (32 bits); its full sha256 is %s: "
                    "set prior.fetch.sha256 to it to verify the file in full", Path(path).name, expected, got)
        _record_full_digest(path, got)
        return got
    want = full if full is not None and full.startswith(expected) else expected
    raise ChecksumError(
        f"{Path(path).name}: sha256 mismatch: expected {want}{'...' if len(want) < 64 else ''}"
        + (" (the full digest recorded when it was first verified)" if want != expected else "")
        + f", got {got} ({Path(path).stat().st_size} bytes, {path})"
        + (f"; downloaded from {url}" if url else "")
        + ": a corrupted or different file; delete it and fetch again, or check prior.fetch.sha256")


def fetch_checkpoint(url: str | None, sha256: str, root=DEFAULT_ROOT, local_file=None, *,
                     retries: int = 5, backoff: float = 1.0, progress: bool = True, timeout: float = 60.0) -> Path:
    """The verified checkpoint file: ``local_file`` when given (checked, not copied),
    else ``<root>/<file name of url>`` (downloaded when missing, resumably)."""
    if local_file:
        p = Path(local_file)
        if not p.is_file():
            raise FileNotFoundError(f"prior.fetch.file: {p} not found (expected the checkpoint "
                                    f"{file_name(url) if url else ''} with sha256 {sha256})")
        check_sha256(p, sha256, url=url)
        return p
    if not url:
        raise ValueError("prior.fetch: set url (and sha256), or file (a copy you already have)")
    sha256 = check_expected(sha256, url)
    name = file_name(url)
    dest = Path(root) / name
    hint = f"the checkpoint {name} (sha256 {sha256}) from {url}; or set prior.fetch.file to a copy you have"
    if len(sha256) == 64:
        return download_url(url, dest, sha256=sha256, retries=retries, backoff=backoff, progress=progress,
                            timeout=timeout, hint=hint, refuse_html=True)
    if dest.is_file():
        try:
            check_sha256(dest, sha256, url=url)
            return dest
        except ChecksumError:
            log.warning("%s exists but fails its sha256 check; downloading again", dest)
            dest.unlink()
            _stamp(dest).unlink(missing_ok=True)
    staging = Path(root) / ".unverified" / name
    download_url(url, staging, retries=retries, backoff=backoff, progress=progress, timeout=timeout,
                 hint=hint, refuse_html=True)
    _stamp(staging).unlink(missing_ok=True)            # a fresh download: nothing known about it yet
    try:
        check_sha256(staging, sha256, url=url)
    except ChecksumError:
        staging.unlink(missing_ok=True)
        raise
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, dest)
    if _stamp(staging).exists():
        os.replace(_stamp(staging), _stamp(dest))      # the full digest, recorded at the check
    return dest


def fetch_enabled(prior_cfg: dict) -> bool:
    """Whether the config's ``prior`` block takes a public checkpoint (``fetch.url`` or
    ``fetch.file`` set, ``train`` false); a missing ``sha256`` is then an error."""
    fetch = (prior_cfg or {}).get("fetch") or {}
    if prior_cfg.get("train", False) or not (fetch.get("url") or fetch.get("file")):
        return False
    if not fetch.get("sha256"):
        raise ValueError("prior.fetch.sha256: required with url or file (the full digest, or the "
                         "8-hex-digit prefix the zoo's file names carry)")
    check_expected(fetch["sha256"], fetch.get("url") or fetch.get("file"))
    return True


def fetched_stem_name(fetch: dict) -> str:
    """The converted checkpoint's stem name: the source file's name without its
    extension, plus the generator kept (``..._avgG``)."""
    src = fetch.get("url") or fetch.get("file")
    if not src:
        raise ValueError("prior.fetch: set url (and sha256), or file")
    return f"{Path(file_name(src) if fetch.get('url') else src).stem}_{fetch.get('generator', 'avgG')}"


def fetch_prior(fetch: dict, stem, *, expect_size: int | None = None, device=None, progress: bool = True):
    """Fetch (or take) the checkpoint ``fetch`` describes, verify it, convert it to
    ``<stem>.safetensors`` + ``<stem>.json``; returns the stem.

    ``expect_size``: the experiment's ``image_size``; a checkpoint making other
    sizes is refused with a message naming both.
    """
    fmt = fetch.get("format", "pgan_zoo")
    if fmt not in FORMATS:
        raise ValueError(f"prior.fetch.format: {fmt!r} is not one of {FORMATS}")
    sha = fetch.get("sha256")
    if not sha:
        raise ValueError("prior.fetch.sha256: required (the full digest or the prefix in the file name)")
    path = fetch_checkpoint(fetch.get("url"), sha, fetch.get("root") or DEFAULT_ROOT, fetch.get("file"),
                            retries=int(fetch.get("retries", 5)), progress=progress)
    from .pgan import convert_zoo_checkpoint

    prov = {"fetched": {"url": fetch.get("url"), "file": str(path), "sha256_expected": sha}}
    return convert_zoo_checkpoint(path, stem, url=fetch.get("url"), generator=fetch.get("generator", "avgG"),
                                  device=device, extra_provenance=prov, expect_size=expect_size)


__all__ = ["FORMATS", "DEFAULT_ROOT", "check_expected", "check_sha256", "known_full_digest", "fetch_checkpoint", "fetch_enabled", "fetch_prior",
           "fetched_stem_name",
           "file_name", "name_hash_prefix"]
