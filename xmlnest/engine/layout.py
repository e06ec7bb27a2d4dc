"""libvirt's placement rules: child order and attribute order.

Both appliers (the lossless text edit, and the lxml mirror whose meaning the output must
match) ask here, so text and tree agree. Orders are the ones libvirt writes them in; a
name these tables do not list goes last.
"""

from __future__ import annotations

ATTR_ORDER: dict[str, tuple[str, ...]] = {
    "cpu": ("mode", "match", "check", "migratable"),
    "feature": ("policy", "name"),
    "model": ("fallback", "vendor_id"),
    "nested-hv": ("state",),
}
CHILD_ORDER: dict[str, tuple[str, ...]] = {
    "domain": (
        "name",
        "uuid",
        "genid",
        "title",
        "description",
        "metadata",
        "maxMemory",
        "memory",
        "currentMemory",
        "blkiotune",
        "memtune",
        "memoryBacking",
        "vcpu",
        "vcpus",
        "iothreads",
        "iothreadids",
        "defaultiothread",
        "cputune",
        "numatune",
        "resource",
        "sysinfo",
        "bootloader",
        "bootloader_args",
        "os",
        "idmap",
        "features",
        "cpu",
        "clock",
        "on_poweroff",
        "on_reboot",
        "on_crash",
        "on_lockfailure",
        "pm",
        "perf",
        "devices",
        "seclabel",
        "keywrap",
        "launchSecurity",
    ),
    "cpu": ("model", "vendor", "topology", "cache", "maxphysaddr", "feature", "numa"),
}


def attr_position(tag: str, existing: list[str], name: str) -> int:
    """Index at which a new attribute goes among ``existing`` attribute names."""
    order = ATTR_ORDER.get(tag, ())
    if name not in order:
        return len(existing)
    rank = order.index(name)
    for i, other in enumerate(existing):
        if other in order and order.index(other) > rank:
            return i
    return len(existing)


def child_anchor(parent_tag: str, children: list[str], new_tag: str) -> tuple[str, int] | None:
    """Where a new child goes: ``("after", i)``, ``("before", i)`` or ``None`` (append).

    ``children`` are the local names of the parent's element children in order.
    """
    order = CHILD_ORDER.get(parent_tag)
    if order is None or new_tag not in order:
        return ("after", len(children) - 1) if children else None
    rank = order.index(new_tag)
    after = None
    for i, name in enumerate(children):
        if name in order and order.index(name) <= rank:
            after = i
    if after is not None:
        return ("after", after)
    for i, name in enumerate(children):
        if name in order and order.index(name) > rank:
            return ("before", i)
    return ("after", len(children) - 1) if children else None
