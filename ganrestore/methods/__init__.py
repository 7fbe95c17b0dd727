"""Restoration methods and their registry.

A method is a function

    restore(y, op, prior, cfg, seeds, upstream=None, task=None) -> Restoration

batched over images: ``y`` holds B observations, ``op`` the task's operator,
``prior`` the GAN prior (or None), ``cfg`` the method's config dict, ``seeds``
one integer per image (from ``(global seed, task, image id)``), ``upstream``
the :class:`Restoration` of the method it builds on (``csgm_bp`` on ``csgm``,
``iagan`` on ``csgm``, ...), ``task`` the :class:`ganrestore.tasks.Task`.

Register with :func:`register`; look up with :func:`get_method`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from .base import Restoration


@dataclass(frozen=True)
class MethodInfo:
    name: str
    fn: Callable
    needs_prior: bool = False          # needs a GAN prior checkpoint
    upstream: str | None = None        # method whose output this one starts from
    applies: Callable | None = None    # task -> bool (None: every task)
    gpu: bool = False                  # benefits from a GPU (rule resources)
    description: str = ""

    def applies_to(self, task) -> bool:
        return True if self.applies is None else bool(self.applies(task))


REGISTRY: dict[str, MethodInfo] = {}

# modules imported on first lookup so that every method registers itself
_MODULES = ["trivial", "classical", "gan", "dip", "cgan"]


def register(name: str, **kw):
    def deco(fn):
        REGISTRY[name] = MethodInfo(name=name, fn=fn, description=(fn.__doc__ or "").strip().split("\n")[0], **kw)
        return fn
    return deco


def _load_all():
    for m in _MODULES:
        try:
            importlib.import_module(f"{__name__}.{m}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{m}":
                raise


def available() -> list[str]:
    _load_all()
    return sorted(REGISTRY)


def get_method(name: str) -> MethodInfo:
    _load_all()
    if name not in REGISTRY:
        raise KeyError(f"unknown method {name!r}; available: {sorted(REGISTRY)}")
    return REGISTRY[name]


__all__ = ["Restoration", "MethodInfo", "register", "get_method", "available", "REGISTRY"]
