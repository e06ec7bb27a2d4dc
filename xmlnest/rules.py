"""Every rule xmlnest applies: a stable id, its level, the reference's reason and a hint.

Errors (XN1xx) refuse an input; warnings (XN2xx) are printed and the input is still
transformed (``--strict`` makes them errors); info (XN3xx) is shown only with ``-v``.
``xmlnest --explain ID`` prints an entry; the README lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass

RHEL = "RHEL 8 'Creating nested virtual machines'"


@dataclass(frozen=True)
class Rule:
    id: str
    level: str  # error, warning, info
    title: str
    reason: str
    source: str
    hint: str


RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule(
            "XN101",
            "error",
            "architecture cannot nest",
            "Nested virtualization works only on Intel, AMD, IBM POWER9 and IBM Z hosts; it "
            "does not work on other architectures such as ARM.",
            f"{RHEL}, 19.2 Tested architectures",
            "do not nest this guest",
        ),
        Rule(
            "XN102",
            "error",
            "domain is not KVM",
            "Only a KVM domain can run KVM guests of its own. type='qemu' is TCG emulation, "
            "which does not offer VMX; other types (xen, lxc, test…) are not KVM at all.",
            "DOMAIN.md §1.3 and §6.12",
            "use <domain type='kvm'> on a KVM host",
        ),
        Rule(
            "XN103",
            "error",
            "--arch, --model or --host-model does not fit the domain",
            "The requested architecture or vendor contradicts the domain: its <os><type "
            "arch>, its <vendor> or its CPU model family. Requiring vmx on an AMD host (or "
            "svm on Intel) makes the guest fail to start. --model and --host-model choose "
            "an x86 CPU and do not apply to POWER9 or IBM Z domains.",
            "DOMAIN.md §5; vagrant-libvirt#667",
            "use --arch auto or the matching --arch",
        ),
        Rule(
            "XN104",
            "error",
            "nesting feature forbidden",
            "A <feature policy='forbid'> on vmx, svm or sief2 is an explicit prohibition of "
            "nesting; xmlnest will not overrule it.",
            "DOMAIN.md §6.4",
            "remove the feature or change its policy to 'require'",
        ),
        Rule(
            "XN105",
            "error",
            "POWER8-or-older compatibility mode",
            "On IBM POWER9, nesting works only when neither the L1 nor the L2 runs in POWER8 "
            "compatibility mode; nested virtualization is not possible on POWER8.",
            f"{RHEL}, 19.2 and 19.6",
            "remove the <model> or use power9",
        ),
        Rule(
            "XN106",
            "error",
            "huge pages on IBM Z",
            "On IBM Z, huge-page backing storage and nested virtualization cannot be used at "
            "the same time (kvm refuses hpage=1 with nested=1).",
            f"{RHEL}, 19.2 Feature limitations",
            "remove <hugepages> from <memoryBacking>",
        ),
        Rule(
            "XN107",
            "error",
            "Secure Execution on IBM Z",
            "Under Secure Execution (launchSecurity type 's390-pv') QEMU withdraws the SIE "
            "facilities an L1 hypervisor needs.",
            "DOMAIN.md §1.4 and §6.22",
            "remove <launchSecurity> to nest this guest",
        ),
        Rule(
            "XN108",
            "error",
            "architecture or vendor unknown",
            "The domain does not say its architecture (<os><type arch>), or, on x86, whether "
            "the CPU is Intel or AMD, and the host running xmlnest cannot tell either.",
            "DOMAIN.md §5 and §6.23",
            "pass --arch",
        ),
        Rule(
            "XN109",
            "error",
            "not a pseries machine",
            "nested-hv (QEMU cap-nested-hv) exists only for pseries machines; powernv and "
            "other machine types cannot host nested guests this way.",
            "DOMAIN.md §2 and §3",
            "use a pseries machine type",
        ),
        Rule(
            "XN110",
            "error",
            "edit would break schema validity",
            "xmlnest never turns a document that validates into one that does not; the "
            "output is refused and nothing is written.",
            "xmlnest's own guarantee",
            "report the input; --no-validate overrides",
        ),
        Rule(
            "XN111",
            "error",
            "unknown CPU mode",
            "libvirt knows the CPU modes custom, host-model, host-passthrough and maximum.",
            "libvirt formatdomain, CPU model and topology",
            "fix the mode",
        ),
        Rule(
            "XN112",
            "error",
            "L2 as a hypervisor (L3)",
            "Using L2 VMs as hypervisors and creating L3 guests has not been properly tested "
            "and is not expected to work; only POWER9 recommends nested-hv in the L2 too.",
            f"{RHEL}, 19.2 Feature limitations and 19.6",
            "drop --level l2",
        ),
        Rule(
            "XN201",
            "warning",
            "check='none' hides a missing nesting feature",
            "With check='none' libvirt does not check the CPU and QEMU only warns about "
            "missing features: the guest starts silently without vmx/svm.",
            "libvirt formatdomain (check); DOMAIN.md §6.9",
            "use check='partial'",
        ),
        Rule(
            "XN202",
            "warning",
            "AMD L1 with nesting cannot migrate",
            "Migrating VMs currently does not work on AMD systems if nested virtualization "
            "has been enabled on the L0 host.",
            f"{RHEL}, 19.2 Feature limitations",
            "do not live-migrate or save this guest",
        ),
        Rule(
            "XN203",
            "warning",
            "host-passthrough migrates only between identical hosts",
            "A host-passthrough CPU exposes the exact host CPU, so the guest can only move "
            "to hosts with an identical CPU and microcode. It is a warning where xmlnest "
            "itself switches a host-model CPU to host-passthrough (the reference document's "
            "first form, which passes vmx/svm through wherever the host has nesting on); "
            "--host-model keeps host-model and requires the feature in it instead. Where "
            "the CPU already is, or was asked to be, host-passthrough or maximum (no <cpu>, "
            "--passthrough), it is an info note.",
            "libvirt formatdomain (host-passthrough)",
            "use --host-model, or --model NAME, for a migratable CPU",
        ),
        Rule(
            "XN204",
            "warning",
            "<qemu:commandline> overrides -cpu",
            "A -cpu argument passed through <qemu:commandline> overrides the CPU libvirt "
            "configures, so the nesting edit may have no effect.",
            "DOMAIN.md §6.25",
            "remove the -cpu argument",
        ),
        Rule(
            "XN205",
            "warning",
            "guest OS outside the tested environments",
            "Nesting was tested with RHEL 7.8+ and RHEL 8.2+ L1 guests and Windows Server "
            "2016/2019 L1 guests (L2: RHEL 7.8+/8.2+); other guests may work but are not "
            "tested.",
            f"{RHEL}, 19.2 Tested environments; DOMAIN.md §4",
            "prefer a tested guest OS",
        ),
        Rule(
            "XN206",
            "info",
            "guest OS unknown",
            "The domain has no libosinfo metadata, so xmlnest cannot compare the guest OS "
            "with the tested environments.",
            "DOMAIN.md §4",
            "virt-install --os-variant records it",
        ),
        Rule(
            "XN207",
            "warning",
            "Windows guest: nested Hyper-V enlightenments",
            "A Windows L1 that runs Hyper-V or WSL2 wants the nested enlightenments: evmcs "
            "(Intel only, needs vapic) and stimer with direct mode.",
            "QEMU docs/system/i386/hyperv.rst; DOMAIN.md §6.13",
            "add the suggested elements to <hyperv>",
        ),
        Rule(
            "XN208",
            "warning",
            "both vmx and svm required",
            "Requiring both vmx and svm fails on every host: no CPU has both.",
            "DOMAIN.md §6.15; vagrant-libvirt#667",
            "keep only the host vendor's feature",
        ),
        Rule(
            "XN209",
            "warning",
            "HPT on pseries",
            "Nested HV supports radix guests only; an <hpt> setting makes the L1 HPT-oriented.",
            "DOMAIN.md §2 (ppc64 row)",
            "remove <hpt> from <features>",
        ),
        Rule(
            "XN210",
            "info",
            "POWER9: enable nested-hv in the L2 too",
            "Red Hat recommends adding cap-nested-hv to the L2 VMs' configuration as well, "
            "for performance.",
            f"{RHEL}, 19.6 Procedure",
            "run xmlnest --level l2 on the L2's XML",
        ),
        Rule(
            "XN214",
            "warning",
            "RHEL 7 L2 on POWER9 needs the rhel-alt kernel",
            "On IBM POWER9 the L2 VM must use RHEL 8, or RHEL 7 with a rhel-alt kernel; the "
            "libosinfo metadata cannot tell the rhel-alt variant apart.",
            f"{RHEL}, 19.2 Tested environments; DOMAIN.md §4",
            "make sure the L2 runs the rhel-alt kernel",
        ),
        Rule(
            "XN215",
            "warning",
            "the other vendor's virtualization sub-feature required",
            "A required sub-feature of AMD's SVM (npt, nrip-save, avic…) on an Intel target, "
            "or of Intel's VMX (vmx-*) on an AMD one, does not exist on that host: libvirt "
            "refuses to start the guest. Typical after --model moved a domain to the other "
            "vendor's CPU model.",
            "libvirt cpu_map x86_features.xml (CPUID 0x8000000A); DOMAIN.md §1.3",
            "remove the feature or make it optional",
        ),
        Rule(
            "XN220",
            "info",
            "--disable: nothing to disable",
            "The domain already runs without the nesting feature, and adding an element "
            "would change far more than nesting. x86 with no <cpu>, or a <cpu> without a "
            "model (which libvirt refuses features in): QEMU's default CPU model exposes "
            "neither vmx nor svm under KVM (QEMU commit 75d373ef97, 'target-i386: Disable "
            "SVM by default in KVM mode'; some distributions' QEMU turn svm back on for old "
            "machine types). POWER9 without <nested-hv>: QEMU's pseries machines leave "
            "cap-nested-hv off by default.",
            "libvirt formatdomain (CPU model and topology, Hypervisor features); QEMU "
            "target/i386 and hw/ppc/spapr_caps.c",
            "to be explicit anyway, give the domain a <cpu> with a model and run --disable again",
        ),
        Rule(
            "XN221",
            "info",
            "IBM Z: nesting is a host setting",
            "On IBM Z no domain XML setting turns nesting off: an L1 gets the SIE "
            "facilities only when the host's kvm module has nested=1. Turning it off is "
            "the host's nested=0, which applies to every guest on that host.",
            "Linux Documentation/virt/kvm/x86/running-nested-guests.rst (s390x: kvm "
            "nested=1); RHEL 8 'Creating nested virtual machines', 19.5",
            "on the L0 host: options kvm nested=0 in /etc/modprobe.d, then reload kvm",
        ),
        Rule(
            "XN222",
            "info",
            "--host-model: the feature is required in host-model",
            "host-model keeps the guest migratable between hosts libvirt finds compatible "
            "(unlike host-passthrough), which is how OpenStack Nova (cpu_mode=host-model with "
            "cpu_model_extra_flags=vmx) nests. libvirt expands host-model from the host's "
            "CPU each time the guest starts, so the required vmx/svm is satisfied only "
            "where the host offers it, i.e. where the host has nesting on. Intel L1s with "
            "a running L2 migrate since Linux 5.3 and QEMU 4.2; AMD L1s must not be "
            "migrated once an L2 runs (XN202).",
            "libvirt formatdomain (host-model); Linux "
            "Documentation/virt/kvm/x86/running-nested-guests.rst; OpenStack Nova "
            "'Nested guest support'",
            "check virsh domcapabilities on each host for the feature under host-model",
        ),
        Rule(
            "XN223",
            "warning",
            "the host's host-model CPU lacks the nesting feature",
            "The host's domain capabilities do not list vmx/svm in its host-model CPU, so "
            "a host-model guest that requires it will not start on this host: nesting is "
            "off in the host's kvm_intel/kvm_amd module, or the CPU lacks it.",
            "libvirt formatdomain (host-model, feature policy require)",
            "enable nesting on the host (xmlnest --host-check)",
        ),
        Rule(
            "XN211",
            "warning",
            "input already invalid",
            "The input already fails the schema; the nesting edit is made anyway.",
            "xmlnest",
            "fix the input so libvirt accepts it",
        ),
        Rule(
            "XN212",
            "warning",
            "IBM Z custom model switched to host-model",
            "QEMU's named s390x models lack the SIE features (sief2) an L1 hypervisor needs; "
            "host-model carries them when the L0 has nesting enabled.",
            "DOMAIN.md §1.4 and §6.21",
            "use --passthrough for host-passthrough",
        ),
        Rule(
            "XN213",
            "warning",
            "nested-hv was off",
            "The domain explicitly had nested-hv off; xmlnest turns it on.",
            "DOMAIN.md §6.17",
            "check nobody disabled it on purpose",
        ),
    )
}


def explain(rule_id: str) -> str | None:
    rule = RULES.get(rule_id.upper())
    if rule is None:
        return None
    return (
        f"{rule.id} ({rule.level}): {rule.title}\n\n{rule.reason}\n\n"
        f"Hint: {rule.hint}.\nSource: {rule.source}\n"
    )
