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
    "spinlocks": ("state", "retries"),
    "timer": ("name", "track", "tickpolicy", "frequency", "mode", "present"),
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
    # libvirt's virDomainFeature order, as virDomainDefFormatFeatures writes it. nested-hv
    # is left out on purpose: it has always been appended as <features>' last child.
    "features": (
        "acpi",
        "apic",
        "pae",
        "hap",
        "viridian",
        "privnet",
        "hyperv",
        "kvm",
        "pvspinlock",
        "capabilities",
        "pmu",
        "vmport",
        "gic",
        "smm",
        "ioapic",
        "hpt",
        "vmcoreinfo",
        "htm",
        "msrs",
        "ccf-assist",
        "xen",
        "cfpc",
        "sbbc",
        "ibs",
        "tcg",
        "async-teardown",
        "ras",
        "ps2",
        "aia",
    ),
    # libvirt's virDomainHyperv order (the <hyperv> children as libvirt writes them).
    "hyperv": (
        "relaxed",
        "vapic",
        "spinlocks",
        "vpindex",
        "runtime",
        "synic",
        "stimer",
        "reset",
        "vendor_id",
        "frequencies",
        "reenlightenment",
        "tlbflush",
        "ipi",
        "evmcs",
        "avic",
        "emsr_bitmap",
        "xmm_input",
    ),
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

    ``children`` are the local names of the parent's element children in order. The new
    child goes after the last sibling libvirt places before it, unless a sibling libvirt
    places after it comes earlier still (children out of libvirt's order, such as a
    ``<metadata/>`` after ``</devices>``): then before the first of those, where ``virsh
    dumpxml`` would show it, rather than after the late one.
    """
    order = CHILD_ORDER.get(parent_tag)
    if order is None or new_tag not in order:
        return ("after", len(children) - 1) if children else None
    rank = order.index(new_tag)
    after = before = None
    for i, name in enumerate(children):
        if name not in order:
            continue
        if order.index(name) <= rank:
            after = i
        elif before is None:
            before = i
    if after is not None and (before is None or after < before):
        return ("after", after)
    if before is not None:
        return ("before", before)
    return ("after", len(children) - 1) if children else None
