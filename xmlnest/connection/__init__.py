"""Talking to libvirt: one small interface, answered by libvirt-python or by ``virsh``."""

from __future__ import annotations

import os

from xmlnest.connection.virsh import (
    BACKEND_ENV,
    BACKENDS,
    Connection,
    Defined,
    DomainInfo,
    Feature,
    LibvirtPython,
    Virsh,
    features_of,
    host_model_cpu,
    is_live,
    libvirt_python_available,
    redefine,
    vendor_from_capabilities,
)
from xmlnest.errors import LibvirtError

__all__ = [
    "BACKEND_ENV",
    "BACKENDS",
    "Connection",
    "Defined",
    "DomainInfo",
    "Feature",
    "LibvirtError",
    "LibvirtPython",
    "Virsh",
    "choose_backend",
    "connect",
    "features_of",
    "host_model_cpu",
    "is_live",
    "libvirt_python_available",
    "redefine",
    "vendor_from_capabilities",
]


def choose_backend(requested: str | None = None) -> str:
    """``python`` or ``virsh``: as requested (argument, then ``$XMLNEST_LIBVIRT_BACKEND``),
    else libvirt-python when it can be imported, else virsh."""
    wanted = (requested or os.environ.get(BACKEND_ENV, "") or "auto").strip().lower()
    if wanted in BACKENDS:
        return wanted
    if wanted != "auto":
        raise ValueError(f"{BACKEND_ENV}={wanted}: expected python, virsh or auto")
    return "python" if libvirt_python_available() else "virsh"


def connect(uri: str | None = None, *, backend: str | None = None) -> Connection:
    """Open one connection for the whole run (``uri=None``: libvirt's default,
    ``$LIBVIRT_DEFAULT_URI`` included)."""
    if choose_backend(backend) == "python":
        return LibvirtPython.open(uri)
    return Virsh.open(uri)
