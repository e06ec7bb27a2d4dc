"""Every rule's hint, the one text a run and ``--explain`` both show (the rules table reads it).

A hint is kept apart from the rest of the table so that a run that has something to say
loads these few lines, not the whole table (``rules``, read by ``--explain`` and
``--list-rules``). ``{name}`` fields are filled in by the run; ``--explain`` shows them as
``NAME``. A rule's variants are the hints for named situations of the same rule.
"""

from __future__ import annotations

HINTS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "XN101": (
        "the reference document supports Intel, AMD, IBM POWER9 and IBM Z hosts only",
        (),
    ),
    "XN102": (
        "use <domain type='kvm'> on a KVM host",
        (),
    ),
    "XN103": (
        "use --arch auto, or the --arch that matches the domain",
        (
            ("flag", "drop {flag}"),
            ("vendor", "use --arch {vendor}, or --model/--passthrough to replace the CPU"),
        ),
    ),
    "XN104": (
        "remove that <feature> or change its policy to 'require' if nesting is really wanted",
        (),
    ),
    "XN105": (
        "remove the <model> (or use power9) so the guest runs in POWER9 mode",
        (),
    ),
    "XN106": (
        "remove <hugepages> from <memoryBacking>, or do not nest this guest",
        (),
    ),
    "XN107": (
        "remove <launchSecurity> to nest this guest",
        (),
    ),
    "XN108": (
        "pass --arch intel, amd, power9 or ibmz",
        (("x86", "pass --arch intel or --arch amd"),),
    ),
    "XN109": (
        "use a pseries machine type (e.g. pseries-rhel8.2.0)",
        (),
    ),
    "XN110": (
        "nothing was written; the input was valid, so this is a bug or a rule the edit broke "
        "— please report it, or use --no-validate to override",
        (),
    ),
    "XN111": (
        "libvirt knows custom, host-model, host-passthrough and maximum",
        (),
    ),
    "XN112": (
        "only POWER9 L2s get nested-hv (for performance); drop --level l2",
        (),
    ),
    "XN113": (
        "read the stored definition with 'virsh dumpxml --inactive --security-info {name}'",
        (),
    ),
    "XN114": (
        "upgrade the guest to Windows 11 / Server 2022 or later, or use an Intel host",
        (),
    ),
    "XN115": (
        "remove <launchSecurity> to nest this guest, or do not nest it",
        (),
    ),
    "XN116": (
        "drop --windows (it readies a Windows L1), or fix the libosinfo metadata",
        (("arch", "drop --windows"),),
    ),
    "XN201": (
        "use check='partial'",
        (),
    ),
    "XN202": (
        "do not live-migrate or save it",
        (),
    ),
    "XN203": (
        "use --host-model, or --model NAME, for a migratable CPU",
        (("feature", "use --host-model to keep host-model and require {feature} in it"),),
    ),
    "XN204": (
        "remove the -cpu argument",
        (),
    ),
    "XN205": (
        "it may work, but it is not tested",
        (
            (
                "newer",
                "it may work, but it is not tested "
                "(an info note: only older RHEL-family guests warn)",
            ),
        ),
    ),
    "XN206": (
        "virt-install --os-variant records it",
        (),
    ),
    "XN208": (
        "remove the {feature} feature or make it optional",
        (),
    ),
    "XN209": (
        "remove <hpt>",
        (),
    ),
    "XN210": (
        "xmlnest --level l2 L2.xml",
        (),
    ),
    "XN211": (
        "the nesting edit does not depend on that; fix the input for libvirt to accept it",
        (),
    ),
    "XN212": (
        "use --passthrough for host-passthrough instead",
        (),
    ),
    "XN213": (
        "check that nobody disabled it on purpose",
        (),
    ),
    "XN214": (
        "check that the L2 runs the RHEL 7 for POWER9 (rhel-alt) kernel",
        (),
    ),
    "XN215": (
        "remove the {feature} feature or make it optional",
        (),
    ),
    "XN216": (
        "virsh define the converted file, or convert the domain by name "
        "(xmlnest -c URI --domain NAME -i)",
        (),
    ),
    "XN217": (
        "pass --arch intel|amd to choose",
        (),
    ),
    "XN218": (
        "see 'virsh cpu-models x86_64'",
        (("near", "did you mean {models}?"),),
    ),
    "XN219": (
        "enable nesting on that host first (xmlnest --host-check there)",
        (),
    ),
    "XN220": (
        "adding a <cpu> would change far more than nesting; left as it is",
        (("power", "left as it is"),),
    ),
    "XN221": (
        "on the L0 host: modprobe -r kvm && modprobe kvm nested=0 "
        "(and in /etc/modprobe.d: options kvm nested=0)",
        (),
    ),
    "XN222": (
        "virsh domcapabilities lists {feature} under host-model where the host offers it",
        (),
    ),
    "XN223": (
        "upgrade the host kernel first, or keep nesting off (xmlnest --host-check)",
        (),
    ),
    "XN224": (
        "run xmlnest --host-check on that host",
        (),
    ),
    "XN225": (
        "use xmlnest --windows (see xmlnest --explain XN225)",
        (("refused", "a Windows 11 / Server 2022 guest, or an Intel host, is needed for that"),),
    ),
    "XN226": (
        "xmlnest never adds it; remove it unless a passthrough GPU driver needs it",
        (),
    ),
    "XN227": (
        "if Windows no longer boots (automatic repair loop): from the recovery command prompt "
        "'bcdedit /set hypervisorlaunchtype off', or xmlnest --disable on the domain",
        (),
    ),
    "XN228": (
        "upgrade libvirt, QEMU or the kernel (KVM) on that host; QEMU "
        "docs/system/i386/hyperv.rst lists what nested Hyper-V needs",
        (),
    ),
    "XN229": (
        "make sure the guest is Windows 11 / Server 2022 or later "
        "(virt-install --os-variant records it)",
        (),
    ),
    "XN230": (
        "keep one <cpu>: libvirt's schema allows one, and libvirt keeps only the first and "
        "drops the others",
        (),
    ),
}


def rule_hint(rule_id: str, situation: str = "", **values: str) -> str:
    """The hint a run shows for ``rule_id`` (in ``situation``, one of its variants), its
    fields filled from ``values``."""
    default, variants = HINTS[rule_id]
    template = dict(variants)[situation] if situation else default
    return template.format(**values)
