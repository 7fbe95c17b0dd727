"""Public prior checkpoints: fetched (URL + sha256, resumable) or taken from a local
file, verified, and converted once to the project's checkpoint format.

The configuration (``prior.fetch``, config/schema.yaml)::

    url: https://dl.fbaipublicfiles.com/gan_zoo/PGAN/celebaHQ_s6_i80000-6196db68.pth
    sha256: 6196db68        # the full hex digest, or a prefix of at least 8 digits
    file: null              # a copy you already have (checked the same way), instead of downloading
    format: pgan_zoo        # what the file is (pytorch_GAN_zoo PGAN: ganrestore.priors.pgan)
    generator: avgG         # which generator of the file (avgG: the zoo's advice; netG)
    root: results/downloads/priors

``sha256`` may be a prefix because the public files carry one in their names
(torch.hub's convention: ``<name>-<first 8 hex digits of the sha256>.pth``,
which ``torch.hub.download_url_to_file`` checks); :func:`name_hash_prefix`
reads it.  The download goes through :func:`ganrestore.data.download.download_url`
(resume with HTTP Range after a dropped connection or a killed run, bounded
retries, atomic rename): with a full digest that function verifies it; with a
prefix the file is downloaded under ``<root>/.unverified/`` and moved to
``<root>/<file>`` only after its sha256 starts with the prefix.  A mismatch
deletes the file and raises :class:`ChecksumError` naming the URL, the file,
the expected and the actual hash.  A file never lands at ``<root>/<file>``
unverified.

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


def check_sha256(path, expected: str, *, url: str | None = None) -> str:
    """The file's sha256 if it equals ``expected`` or starts with it (a prefix of >= 8
    hex digits); else :class:`ChecksumError` naming the file, the URL and both hashes."""
    expected = str(expected).lower()
    if not re.fullmatch(r"[0-9a-f]{8,64}", expected):
        raise ValueError(f"sha256 must be 8 to 64 hex digits, got {expected!r}")
    got = file_digests(path, ("sha256",))["sha256"]
    if not got.startswith(expected):
        raise ChecksumError(
            f"{Path(path).name}: sha256 mismatch: expected {expected}{'...' if len(expected) < 64 else ''}, "
            f"got {got} ({Path(path).stat().st_size} bytes, {path})"
            + (f"; downloaded from {url}" if url else "")
            + ": a corrupted or different file; delete it and fetch again, or check prior.fetch.sha256")
    return got


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
            log.warning("%s exists but fails its sha256 prefix %s; downloading again", dest, sha256)
            dest.unlink()
    staging = Path(root) / ".unverified" / name
    download_url(url, staging, retries=retries, backoff=backoff, progress=progress, timeout=timeout,
                 hint=hint, refuse_html=True)
    try:
        check_sha256(staging, sha256, url=url)
    except ChecksumError:
        staging.unlink(missing_ok=True)
        raise
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, dest)
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


__all__ = ["FORMATS", "DEFAULT_ROOT", "check_sha256", "fetch_checkpoint", "fetch_enabled", "fetch_prior",
           "fetched_stem_name",
           "file_name", "name_hash_prefix"]
