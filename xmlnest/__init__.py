"""xmlnest: enable nested virtualization in libvirt domain XML without reformatting it.

The public API (``xmlnest.transform``, ``check``, ``host_check``, ``explain``; libvirt
domains by name: ``connect``, ``convert_domains``, ``domain_status``, ``domain_names``; and
the types they take and raise) lives in ``xmlnest.api`` and is loaded on first use, so that
``import xmlnest.errors`` and the other modules stay cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "DomainResult",
    "Finding",
    "InputError",
    "Level",
    "Result",
    "RuleError",
    "UsageError",
    "ValidationError",
    "XmlnestError",
    "check",
    "connect",
    "convert_domains",
    "domain_names",
    "domain_status",
    "enabling_risk",
    "explain",
    "host_check",
    "transform",
]

if TYPE_CHECKING:
    from xmlnest.api import (
        DomainResult,
        Result,
        check,
        connect,
        convert_domains,
        domain_names,
        domain_status,
        enabling_risk,
        explain,
        host_check,
        transform,
    )
    from xmlnest.errors import InputError, RuleError, UsageError, ValidationError, XmlnestError

_HOMES = {
    "DomainResult": "xmlnest.api",
    "connect": "xmlnest.api",
    "convert_domains": "xmlnest.api",
    "domain_names": "xmlnest.api",
    "domain_status": "xmlnest.api",
    "enabling_risk": "xmlnest.api",
    "Result": "xmlnest.api",
    "check": "xmlnest.api",
    "explain": "xmlnest.api",
    "host_check": "xmlnest.api",
    "transform": "xmlnest.api",
    "InputError": "xmlnest.errors",
    "RuleError": "xmlnest.errors",
    "UsageError": "xmlnest.errors",
    "ValidationError": "xmlnest.errors",
    "XmlnestError": "xmlnest.errors",
    "Finding": "xmlnest.engine.plan",
    "Level": "xmlnest.engine.plan",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'xmlnest' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)
