"""Every rule xmlnest applies: a stable id, its level, the reference's reason and a hint.

Errors (XN1xx) refuse an input; warnings and info (XN2xx) are printed and the input is
still transformed (``--strict`` makes warnings errors); notes are printed with the edit
unless -q and never refuse; info is shown only with ``-v``. ``xmlnest --explain ID``
prints an entry; ``docs/rules/`` has a page per rule (``tools/gen_docs.py`` makes them
from this table).
"""

from __future__ import annotations

from typing import NamedTuple

from xmlnest.engine.hints import HINTS

RHEL = "RHEL 8 'Creating nested virtual machines'"


class Rule(NamedTuple):
    """One rule; its hint texts are ``hints.HINTS``' (a run's and ``--explain``'s alike)."""

    id: str
    level: str  # error, warning, info
    title: str
    reason: str
    source: str

    @property
    def hint(self) -> str:
        """The default hint; ``{name}`` fields are filled in by a run."""
        return HINTS[self.id][0]

    @property
    def variants(self) -> tuple[tuple[str, str], ...]:
        """The hints for named situations of this rule."""
        return HINTS[self.id][1]


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
        ),
        Rule(
            "XN102",
            "error",
            "domain is not KVM",
            "Only a KVM domain can run KVM guests of its own. type='qemu' is TCG emulation, "
            "which does not offer VMX; other types (xen, lxc, test…) are not KVM at all.",
            "libvirt formatdomain, Element and attribute overview (type); Linux "
            "Documentation/virt/kvm/x86/running-nested-guests.rst",
        ),
        Rule(
            "XN103",
            "error",
            "--arch or --model does not fit the domain",
            "The requested architecture or vendor contradicts the domain: its <os><type "
            "arch>, its <vendor> or its CPU model family. Requiring vmx on an AMD host (or "
            "svm on Intel) makes the guest fail to start. --model names an x86 CPU model "
            "and does not apply to POWER9 or IBM Z domains (--host-model, a policy for x86 "
            "CPUs, leaves those their own edit).",
            "libvirt formatdomain, CPU model and topology (vendor, model); vagrant-libvirt#667",
        ),
        Rule(
            "XN104",
            "error",
            "nesting feature forbidden",
            "A <feature policy='forbid'> on vmx, svm or sief2 is an explicit prohibition of "
            "nesting; xmlnest will not overrule it.",
            "libvirt formatdomain, CPU model and topology (feature policy 'forbid')",
        ),
        Rule(
            "XN105",
            "error",
            "POWER8-or-older compatibility mode",
            "On IBM POWER9, nesting works only when neither the L1 nor the L2 runs in POWER8 "
            "compatibility mode; nested virtualization is not possible on POWER8.",
            f"{RHEL}, 19.2 and 19.6",
        ),
        Rule(
            "XN106",
            "error",
            "huge pages on IBM Z",
            "On IBM Z, huge-page backing storage and nested virtualization cannot be used at "
            "the same time (kvm refuses hpage=1 with nested=1).",
            f"{RHEL}, 19.2 Feature limitations",
        ),
        Rule(
            "XN107",
            "error",
            "Secure Execution on IBM Z",
            "Under Secure Execution (launchSecurity type 's390-pv') QEMU withdraws the SIE "
            "facilities an L1 hypervisor needs.",
            "QEMU target/s390x/cpu_models.c (SIE facilities are withheld from protected "
            "guests); QEMU docs/system/s390x/protvirt.rst",
        ),
        Rule(
            "XN108",
            "error",
            "architecture or vendor unknown",
            "The domain does not say its architecture (<os><type arch>), or, on x86, whether "
            "the CPU is Intel or AMD, and the host running xmlnest cannot tell either.",
            "libvirt formatdomain, Operating system booting (type arch) and CPU model and "
            "topology (vendor)",
        ),
        Rule(
            "XN109",
            "error",
            "not a pseries machine",
            "nested-hv (QEMU cap-nested-hv) exists only for pseries machines; powernv and "
            "other machine types cannot host nested guests this way.",
            "libvirt formatdomain, Hypervisor features (nested-hv: pSeries guests only)",
        ),
        Rule(
            "XN110",
            "error",
            "edit would break schema validity",
            "xmlnest never turns a document that validates into one that does not; the "
            "output is refused and nothing is written.",
            "xmlnest's own guarantee",
        ),
        Rule(
            "XN111",
            "error",
            "unknown CPU mode",
            "libvirt knows the CPU modes custom, host-model, host-passthrough and maximum.",
            "libvirt formatdomain, CPU model and topology",
        ),
        Rule(
            "XN112",
            "error",
            "L2 as a hypervisor (L3)",
            "Using L2 VMs as hypervisors and creating L3 guests has not been properly tested "
            "and is not expected to work; only POWER9 recommends nested-hv in the L2 too.",
            f"{RHEL}, 19.2 Feature limitations and 19.6",
        ),
        Rule(
            "XN113",
            "error",
            "live XML of a running domain",
            "libvirt writes the id attribute on <domain> only for a running domain: this is "
            "its live XML (what virsh dumpxml prints when --inactive is left out), with "
            "runtime state filled in — "
            "the host-model CPU expanded into a pinned custom model (check='full', "
            "fallback='forbid'), device aliases, dynamic security labels. Defining it back "
            "stores that state for good. Convert the stored definition instead: "
            "xmlnest -c URI --domain NAME -i, or "
            "xml=$(virsh dumpxml --inactive --security-info NAME | xmlnest) && "
            "printf '%s\\n' \"$xml\" | virsh define --validate /dev/stdin "
            "(--security-info keeps VNC/SPICE passwords; && defines nothing when xmlnest "
            "refuses); the new CPU takes effect after a full power-off (virsh shutdown NAME, "
            "then virsh start NAME), not after a reboot.",
            "libvirt formatdomain, Element and attribute overview (id: running guests only); "
            "virsh(1), dumpxml --inactive --security-info",
        ),
        Rule(
            "XN114",
            "error",
            "--windows: AMD L1 older than Windows 11 / Server 2022",
            "Microsoft supports nested virtualization (Hyper-V, WSL2, Sandbox, VBS inside a "
            "VM) on AMD EPYC/Ryzen processors only when the Windows that runs the Hyper-V "
            "hypervisor is Windows 11 or Windows Server 2022 or later; on Intel, Windows 10 "
            "and Windows Server 2016 suffice. The release is read from the domain's "
            "libosinfo metadata (http://microsoft.com/win/...).",
            "Microsoft Learn, 'Run Hyper-V in a Virtual Machine with Nested Virtualization' "
            "(Prerequisites: AMD EPYC / Ryzen processor or later); "
            "MicrosoftDocs/Virtualization-Documentation enable-nested-virtualization.md",
        ),
        Rule(
            "XN115",
            "error",
            "confidential guest cannot nest",
            "A guest whose memory and state are protected from the host (launchSecurity "
            "type 'sev', 'sev-snp' or 'tdx') gets no nested virtualization from KVM: SVM "
            "and VMX are not offered inside SEV/SEV-SNP and TDX guests. Every x86 nesting "
            "edit is refused for them, --windows or not.",
            "AMDESE/AMDSEV#63 (kvm_amd in an SEV guest: 'SVM: KVM is unsupported when "
            "running as an SEV guest') and #169 (no nesting inside an SNP guest, AMD's "
            "maintainer); libvirt formatdomain, Launch Security (sev, sev-snp, tdx)",
        ),
        Rule(
            "XN116",
            "error",
            "--windows on a guest that is not Windows",
            "--windows readies an x86 L1 for the Windows hypervisor. The domain's libosinfo "
            "metadata names another OS (or the domain is not x86), so the Windows profile "
            "(Hyper-V enlightenments, TSX off, the Hyper-V clock) would be wrong for it.",
            "libosinfo ids (http://microsoft.com/win/...) as virt-install --os-variant "
            "records them in <metadata>",
        ),
        Rule(
            "XN201",
            "warning",
            "check='none' hides a missing nesting feature",
            "With check='none' libvirt does not check the CPU and QEMU only warns about "
            "missing features: the guest starts silently without vmx/svm.",
            "libvirt formatdomain, CPU model and topology (check)",
        ),
        Rule(
            "XN202",
            "warning",
            "AMD L1 with nesting cannot migrate",
            "Migrating VMs currently does not work on AMD systems if nested virtualization "
            "has been enabled on the L0 host.",
            f"{RHEL}, 19.2 Feature limitations",
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
        ),
        Rule(
            "XN204",
            "warning",
            "<qemu:commandline> overrides -cpu",
            "A -cpu argument passed through <qemu:commandline> overrides the CPU libvirt "
            "configures, so the nesting edit may have no effect.",
            "libvirt drvqemu, Pass-through of arbitrary qemu commands",
        ),
        Rule(
            "XN205",
            "warning",
            "guest OS outside the tested environments",
            "Nesting was tested with RHEL 7.8+ and RHEL 8.2+ L1 guests and Windows Server "
            "2016/2019 L1 guests (L2: RHEL 7.8+/8.2+; on POWER9 RHEL 8). A RHEL-family "
            "guest older than that (RHEL, CentOS, Rocky, AlmaLinux before 7.8, or 8.0/8.1) "
            "gets a warning; any other guest (newer RHEL, Ubuntu, Debian, Fedora, Windows "
            "10/11…) only an info note: it may well work, it is just outside the tested "
            "matrix.",
            f"{RHEL}, 19.2 Tested environments",
        ),
        Rule(
            "XN206",
            "info",
            "guest OS unknown",
            "The domain has no libosinfo metadata, so xmlnest cannot compare the guest OS "
            "with the tested environments.",
            "virt-install(1), --osinfo (libosinfo metadata in <metadata>)",
        ),
        Rule(
            "XN208",
            "warning",
            "both vmx and svm required",
            "Requiring both vmx and svm fails on every host: no CPU has both.",
            "libvirt formatdomain, CPU model and topology (feature policy); vagrant-libvirt#667",
        ),
        Rule(
            "XN209",
            "warning",
            "HPT on pseries",
            "Nested HV supports radix guests only; an <hpt> setting makes the L1 HPT-oriented.",
            "Linux commit 'KVM: PPC: Book3S HV: Allow HV module to load without hypervisor "
            "mode' (nested hypervisors run radix guests only)",
        ),
        Rule(
            "XN210",
            "info",
            "POWER9: enable nested-hv in the L2 too",
            "Red Hat recommends adding cap-nested-hv to the L2 VMs' configuration as well, "
            "for performance.",
            f"{RHEL}, 19.6 Procedure",
        ),
        Rule(
            "XN214",
            "warning",
            "RHEL 7 L2 on POWER9 needs the rhel-alt kernel",
            "On IBM POWER9 the L2 VM must use RHEL 8, or RHEL 7 with a rhel-alt kernel; the "
            "libosinfo metadata cannot tell the rhel-alt variant apart.",
            f"{RHEL}, 19.2 Tested environments",
        ),
        Rule(
            "XN215",
            "warning",
            "the other vendor's virtualization sub-feature required",
            "A required sub-feature of AMD's SVM (npt, nrip-save, avic…) on an Intel target, "
            "or of Intel's VMX (vmx-*) on an AMD one, does not exist on that host: libvirt "
            "refuses to start the guest. Typical after --model moved a domain to the other "
            "vendor's CPU model.",
            "libvirt src/cpu_map/x86_features.xml (CPUID 0x8000000A)",
        ),
        Rule(
            "XN219",
            "warning",
            "the host behind the URI does not offer nesting",
            "With a libvirt connection, the host-model CPU in that host's domain capabilities "
            "(virsh domcapabilities --virttype kvm) carries vmx or svm only when the host's KVM "
            "offers nesting to guests. Without it, a guest asking for the feature fails to "
            "start, and host-passthrough gives it nothing to nest with. Drivers that cannot "
            "answer (the test driver) get no warning.",
            "libvirt formatdomaincaps (CPU configuration, host-model); Linux "
            "Documentation/virt/kvm/x86/running-nested-guests.rst",
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
        ),
        Rule(
            "XN223",
            "warning",
            "the host's kernel has a nesting-only guest-to-host escape",
            "Some KVM bugs let a guest escape to the host only when the guest uses nesting: "
            "it is given vmx/svm and runs guests of its own, which is exactly what enabling "
            "nesting gives it. An enabling run over a host whose kernel xmlnest can read (a "
            "local URI, or --host-root) compares that kernel with the advisories below, once "
            "per run; --strict refuses the run and defines nothing. Kernels that carry fixes "
            "under an old version (RHEL, Ubuntu, SUSE) cannot be judged by their version, and "
            "get no warning: xmlnest --host-check says 'cannot tell' for them.",
            "the advisories' public sources, listed by xmlnest --explain XN223",
        ),
        Rule(
            "XN224",
            "info",
            "the host's kernel cannot be checked from here",
            "The URI names a remote host, whose kernel xmlnest cannot read, so it cannot say "
            "whether that kernel has a nesting-only guest-to-host escape (XN223). Run "
            "xmlnest --host-check on that host: its Security line gives the verdict.",
            "xmlnest; see XN223 for the advisories",
        ),
        Rule(
            "XN225",
            "warning",
            "Windows guest: Hyper-V, WSL2 and VBS need --windows",
            "The plain edit exposes vmx/svm, which is all a Linux L1 needs. A Windows L1 "
            "that runs Hyper-V, WSL2, Windows Sandbox or VBS needs more, or it ends in "
            "'processor isn't supporting VMX', an automatic-repair loop or "
            "HCS_E_HYPERV_NOT_INSTALLED (dockur/windows#265 and #1191, "
            "winboat-org/winboat#880): the enlightenments nested Hyper-V uses "
            "(synthetic timers in direct mode; evmcs on Intel), the Hyper-V clock, and on "
            "Intel TSX off (cilium/ebpf#1816). The warning names only what --windows would "
            "still add: a <hyperv mode='passthrough'/> already gives every enlightenment "
            "KVM has, so none is advised then. It replaces XN207.",
            "QEMU docs/system/i386/hyperv.rst (hv-stimer-direct: 'nested Hyper-V can only "
            "use synthetic timers in direct mode'; hv-evmcs); dockur/windows#265, #1191; "
            "winboat-org/winboat#880; cilium/ebpf#1816",
        ),
        Rule(
            "XN226",
            "warning",
            "--windows: the hypervisor is hidden from Windows",
            "<hyperv><vendor_id> and <kvm><hidden state='on'/> exist to get past GPU "
            "drivers that refuse to run in a VM; they change or hide the hypervisor "
            "Windows sees, and may keep it from starting its own (VBS, Hyper-V). xmlnest "
            "never adds them and leaves them in place.",
            "libvirt formatdomain, Hypervisor features (vendor_id, kvm hidden); "
            "vagrant-libvirt#1867 (a nested Windows setup carrying both)",
        ),
        Rule(
            "XN227",
            "note",
            "--windows: what happens next, and how to recover",
            "Once vmx/svm is exposed, Windows starts its hypervisor at the next boot "
            "(Windows 11 turns VBS on by itself). The new CPU takes effect only after a "
            "full power-off (virsh shutdown, then virsh start). To confirm inside Windows: "
            "systeminfo says 'A hypervisor has been detected', and msinfo32 shows "
            "Virtualization-based security 'Running'. A guest that no longer boots "
            "(automatic repair) recovers with 'bcdedit /set hypervisorlaunchtype off' from "
            "the recovery prompt, or with xmlnest --disable, which turns off vmx/svm only "
            "and keeps the enlightenments (they help Windows itself). Said with every edit "
            "--windows makes; --ignore XN227 silences it.",
            "dockur/windows#265 (automatic-repair loop after enabling Hyper-V); "
            "winboat-org/winboat#880; microsoft/openvmm#3646 and #3648 (nesting exposed "
            "to a Windows guest stops its boot; made opt-in); Microsoft Learn, 'Run "
            "Hyper-V in a Virtual Machine with Nested Virtualization' (VM off to change it)",
        ),
        Rule(
            "XN228",
            "warning",
            "--windows: enlightenment unknown to the target libvirt",
            "xmlnest writes only what the target libvirt accepts: the <hyperv> children its "
            "RelaxNG schema (domaincommon.rng) allows and, with a libvirt connection, those "
            "the host's domain capabilities list as supported (<hyperv><enum "
            "name='features'>). An enlightenment of the profile outside them is left out "
            "rather than written invalid or unsupported, and nested Hyper-V may then fail "
            "to start.",
            "libvirt formatdomain, Hypervisor features (the 'since' of each hyperv "
            "feature); libvirt formatdomaincaps, Hyper-V Enlightenments; QEMU "
            "docs/system/i386/hyperv.rst",
        ),
        Rule(
            "XN229",
            "warning",
            "--windows on AMD: Windows release unknown",
            "The domain has no libosinfo metadata, so xmlnest cannot check that the guest "
            "is Windows 11 / Server 2022 or later, which Microsoft requires for nested "
            "virtualization on AMD (XN114).",
            "Microsoft Learn, 'Run Hyper-V in a Virtual Machine with Nested Virtualization' "
            "(Prerequisites)",
        ),
        Rule(
            "XN211",
            "warning",
            "input already invalid",
            "The input already fails the schema; the nesting edit is made anyway.",
            "xmlnest",
        ),
        Rule(
            "XN212",
            "warning",
            "IBM Z custom model switched to host-model",
            "QEMU's named s390x models lack the SIE features (sief2) an L1 hypervisor needs; "
            "host-model carries them when the L0 has nesting enabled.",
            "QEMU target/s390x/gen-features.c (default model feature sets lack sief2)",
        ),
        Rule(
            "XN213",
            "warning",
            "nested-hv was off",
            "The domain explicitly had nested-hv off; xmlnest turns it on.",
            "libvirt formatdomain, Hypervisor features (nested-hv)",
        ),
        Rule(
            "XN216",
            "warning",
            "libvirt's own auto-generated file",
            "Files libvirtd stores (/etc/libvirt/qemu/NAME.xml) carry an AUTO-GENERATED "
            "header: libvirtd reads them only when it starts and rewrites them on every "
            "change, so an edit to the file is not seen by the running daemon and may be "
            "overwritten. Define the converted XML instead.",
            "the header libvirt writes into its stored domain files ('use virsh edit'); "
            "virsh(1), define",
        ),
        Rule(
            "XN217",
            "warning",
            "x86 vendor taken from this machine",
            "The domain names no CPU vendor or model family, so --arch auto took Intel or "
            "AMD from the CPU of the machine running xmlnest. In a templates repository or "
            "for a domain of another host that may be the wrong one, and the result would "
            "change from machine to machine.",
            "xmlnest (vmx is Intel's extension, svm AMD's: libvirt src/cpu_map/x86_features.xml)",
        ),
        Rule(
            "XN230",
            "warning",
            "more than one <cpu>",
            "The domain has several <cpu> elements (a template with two branches, say). "
            "libvirt's schema allows one; libvirt itself keeps the first and drops the "
            "others without a word. xmlnest reads and edits only the first, so a later one "
            "keeps whatever it says about nesting.",
            "libvirt formatdomain, CPU model and topology; libvirt's domain.rng (one <cpu>)",
        ),
        Rule(
            "XN218",
            "warning",
            "CPU model unknown to libvirt's cpu_map",
            "--model names a CPU model that the installed libvirt's cpu_map does not list; "
            "libvirt would refuse to start the domain ('Unknown CPU model').",
            "libvirt src/cpu_map/index.xml; virsh(1), cpu-models",
        ),
    )
}


def markdown_table() -> str:
    """The rules table of docs/rules/index.md, one row per rule (a test holds it to it)."""
    rows = ["| id | level | rule | source |", "|---|---|---|---|"]
    for rule in sorted(RULES.values(), key=lambda r: r.id):
        rows.append(f"| {rule.id} | {rule.level} | {rule.title} | {rule.source} |")
    return "\n".join(rows) + "\n"


def listing() -> str:
    """``--list-rules``: every rule with its level and title, one line each."""
    return "".join(
        f"{rule.id}  {rule.level:<7}  {rule.title}\n"
        for rule in sorted(RULES.values(), key=lambda r: r.id)
    )


class _Named(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return key.upper()


def _shown(template: str) -> str:
    """A hint as ``--explain`` prints it: fields as ``NAME``, ending in a full stop."""
    text = template.format_map(_Named())
    return text if text.endswith((".", "?", "!")) else text + "."


def explain(rule_id: str) -> str | None:
    rule = RULES.get(rule_id.upper())
    if rule is None:
        return None
    also = "".join(f"Hint ({name}): {_shown(text)}\n" for name, text in rule.variants)
    return (
        f"{rule.id} ({rule.level}): {rule.title}\n\n{rule.reason}\n\n"
        f"Hint: {_shown(rule.hint)}\n{also}Source: {rule.source}\n"
    )
