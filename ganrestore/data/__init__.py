"""Datasets: the offline embedded demo, face alignment, CelebA / CelebA-HQ / face folders.

Submodules are imported on demand so that ``import ganrestore.data`` stays
cheap and does not need dlib or torch:

- :mod:`ganrestore.data.align` -- face detection (dlib) and CelebA 64x64
  DCGAN-protocol alignment;
- :mod:`ganrestore.data.demo` -- the embedded demo set (package photographs +
  faces sampled from the pretrained teacher generator), :func:`build_demo`;
- :mod:`ganrestore.data.download` -- resumable, checksummed HTTP / Google Drive downloads;
- :mod:`ganrestore.data.celeba`, :mod:`ganrestore.data.celebahq`,
  :mod:`ganrestore.data.folder` -- the real data sources.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "build_demo": "demo",
    "align_faces": "align",
    "align_from_landmarks": "align",
    "detect_faces": "align",
    "CANONICAL_64": "align",
    "build_celeba": "celeba",
    "build_celebahq": "celebahq",
    "build_folder": "folder",
}


def merge_defaults(defaults: dict, cfg: dict | None, section: str) -> dict:
    """``cfg`` over ``defaults``; a key ``defaults`` does not know is an error naming ``section``."""
    out = {**defaults, **(cfg or {})}
    unknown = set(out) - set(defaults)
    if unknown:
        raise ValueError(f"{section}: unknown keys {sorted(unknown)}")
    return out


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_LAZY)
