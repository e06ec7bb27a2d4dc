"""The x86 CPU model names the installed libvirt knows, read from its cpu_map folder."""

from __future__ import annotations

import os

CPU_MAP_PLACES = ("/usr/share/libvirt/cpu_map", "/usr/local/share/libvirt/cpu_map")
_NOT_MODELS = frozenset(("vendors", "features"))


def x86_models(places: tuple[str, ...] = CPU_MAP_PLACES) -> frozenset[str] | None:
    """Model names from ``x86_NAME.xml`` files (libvirt names each file after its model),
    or ``None`` when no cpu_map is installed (then nothing can be said)."""
    for folder in places:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        models = (
            frozenset(n[4:-4] for n in names if n.startswith("x86_") and n.endswith(".xml"))
            - _NOT_MODELS
        )
        if models:
            return models
    return None


def closest(name: str, models: frozenset[str], n: int = 3) -> list[str]:
    """The known models nearest to ``name`` (case-insensitive), best first."""
    import difflib

    by_lower = {m.lower(): m for m in models}
    found = difflib.get_close_matches(name.lower(), sorted(by_lower), n=n, cutoff=0.5)
    return [by_lower[m] for m in found]
