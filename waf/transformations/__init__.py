"""Transformation registry: ``t:name`` functions from bytes to bytes.

A transformation module registers plain functions with ``@register("name")``
(names are case-insensitive, as in SecLang). They are pure: the engine caches
results per value and transformation prefix, and compares input and output
to know whether a value changed (for ``multiMatch``).
"""

from __future__ import annotations

from collections.abc import Callable

from waf.registry import Registry

Transformation = Callable[[bytes], bytes]

_REGISTRY: Registry[Transformation] = Registry(__name__, __path__)


def register(*names: str) -> Callable[[Transformation], Transformation]:
    return _REGISTRY.register(*names)


def get_transformation(name: str) -> Transformation:
    """KeyError for an unknown name."""
    return _REGISTRY.get(name)


def transformation_names() -> list[str]:
    return _REGISTRY.names()
