"""Transformation registry: ``t:name`` functions from bytes to bytes.

A transformation module registers plain functions with ``@register("name")``
(names are case-insensitive, as in SecLang). They are pure: the engine caches
results per value and transformation prefix, and compares input and output
to know whether a value changed (for ``multiMatch``).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

Transformation = Callable[[bytes], bytes]

_REGISTRY: dict[str, Transformation] = {}


def register(*names: str) -> Callable[[Transformation], Transformation]:
    def deco(fn: Transformation) -> Transformation:
        for name in names:
            _REGISTRY[name.lower()] = fn
        return fn

    return deco


def _load_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


def get_transformation(name: str) -> Transformation:
    """KeyError for an unknown name."""
    if not _REGISTRY:
        _load_all()
    return _REGISTRY[name.lower()]


def transformation_names() -> list[str]:
    if not _REGISTRY:
        _load_all()
    return sorted(_REGISTRY)
