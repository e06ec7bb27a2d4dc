"""A real libvirtd + QEMU (TCG) for tests: boot a tiny guest from domain XML, report what it saw.

One :class:`RealVirt` per test session (``session()``; the ``realvirt`` fixture in
tests/conftest.py) talks to ``qemu:///system`` through ``virsh``. It copies the host's
Debian kernel and a busybox initramfs into a folder the ``libvirt-qemu`` user can read.
The initramfs's ``/init`` (INIT) prints, between markers: the ``svm``/``vmx`` flags of the
guest's ``/proc/cpuinfo``; whether each KVM module the initramfs carries loaded (x86:
``modprobe --show-depends kvm-amd`` against the Debian kernel's modules); the kernel's
log lines about KVM; the files ``xmlnest --host-check`` reads, line by line, and
``/dev/kvm``'s device node; then it runs ``/bin/l2`` (tests/guest/l2.c, built with
``gcc -static``), a minimal L2 driven through ``/dev/kvm``, and powers off.
:meth:`RealVirt.boot_all` defines domains (``virsh define --validate``), starts them all,
reads their live XML while they run, waits for each power-off (``virsh destroy`` after a
timeout, failing with the console log) and returns per guest its flags, its
:class:`L1Report`, QEMU's ``-cpu``/``-machine`` arguments and the live XML.
:func:`host_tree` lays an L1's report out as a captured host tree for ``--host-root``.

POWER9 (:meth:`RealVirt.prepare_power9`): Debian's ppc64el kernel and busybox, downloaded
once with ``apt-get download`` into a cache folder (``XMLNEST_E2E_CACHE``, default
/var/cache/xmlnest-e2e) and unpacked with ``dpkg-deb -x``; the same INIT loads
``kvm-hv`` in a pseries guest under ``qemu-system-ppc64``'s TCG.

Every domain it defined is undefined and every file it made is removed when the session
ends, even after a failure (the download cache stays).

``/dev/kvm`` on the project's machines cannot boot ordinary guests, so guests run under
TCG (``<domain type='qemu'>``); :func:`to_tcg` changes only that attribute of a converted
``type='kvm'`` domain.

``python -m tests.realvirt capture DIR`` writes the live and inactive XML of a running
TCG domain and of libvirt's test driver (tests/libvirt-xml/live/README.md).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

URI = "qemu:///system"
QEMU_LOG_DIR = Path("/var/log/libvirt/qemu")
BUSYBOX = Path("/bin/busybox")
TIMEOUT = 180.0  # seconds a guest may take to power off before it is destroyed (2 boot at once)
POWER9_TIMEOUT = 240.0  # a pseries guest under TCG takes 20-30 s alone, more beside others
L2_SOURCE = Path(__file__).resolve().parent / "guest" / "l2.c"
CACHE = Path(os.environ.get("XMLNEST_E2E_CACHE", "/var/cache/xmlnest-e2e"))

BEGIN = "XMLNEST-E2E-BEGIN"
END = "XMLNEST-E2E-END"
COUNT = "XMLNEST-E2E-FLAGCOUNT"  # how many flags /proc/cpuinfo listed: proves grep read it
FLAG = "XMLNEST-E2E-FLAG"
HANG = "XMLNEST-E2E-HANG"
PREFIX = "xmlnest-e2e-"  # every domain a session defines starts with it
MODULE = "XMLNEST-E2E-MODULE"  # "loaded NAME" or "failed NAME: what insmod said"
KMSG = "XMLNEST-E2E-KMSG"  # one kernel log line mentioning kvm or svm
FILE = "XMLNEST-E2E-FILE"  # a file the guest read: its path; its lines follow as LINE
LINE = "XMLNEST-E2E-LINE"
NODE = "XMLNEST-E2E-NODE"  # "/dev/kvm MAJOR MINOR MODE UID GID" (hex, hex, octal) or "missing"
L2 = "XMLNEST-L2"  # the lines /bin/l2 prints (tests/guest/l2.c)
MIN_FLAGS = 10  # every x86 CPU QEMU models lists far more (fpu, tsc, msr, ...)

# The guest's whole userland. `no5lvl` on the kernel command line matters: with QEMU 7.2's
# `-cpu max` under TCG, 5-level paging makes every busybox command abort, and an empty flag
# list would then look exactly like "no svm"; the FLAGCOUNT line tells the two apart.
# The console log level is lowered to 1 so that kernel messages (kvm's among them) cannot
# cut into the report's lines; the report takes them from dmesg instead.
# /modules/order names the modules to insmod, in order (x86: kvm-amd and what it needs;
# POWER: kvm-hv and kvm). /bin/l2 is there on x86 only.
# `xmlnest_e2e_hang` on the command line makes it wait forever (the timeout's own test).
INIT = f"""#!/bin/busybox sh
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev
echo 1 > /proc/sys/kernel/printk
echo
echo {BEGIN}
flags=$($bb grep -m1 '^flags' /proc/cpuinfo | $bb cut -d: -f2)
echo "{COUNT} $(echo $flags | $bb wc -w)"
for f in $flags; do
  case $f in svm|vmx) echo "{FLAG} $f";; esac
done
for m in $($bb cat /modules/order); do
  if said=$($bb insmod /modules/$m.ko 2>&1); then
    echo "{MODULE} loaded $m"
  else
    echo "{MODULE} failed $m: $said"
  fi
done
$bb dmesg | $bb grep -i -E 'kvm|svm' | while IFS= read -r l; do echo "{KMSG} $l"; done
fact() {{
  echo "{FILE} $1"
  while IFS= read -r l || [ -n "$l" ]; do echo "{LINE} $l"; done < "$1"
}}
for f in /proc/cpuinfo /proc/modules /proc/cmdline /proc/self/status \
    /sys/class/dmi/id/sys_vendor /sys/class/dmi/id/product_name; do
  [ -r $f ] && fact $f 2>/dev/null
done
[ -f /sys/module/kvm/initstate ] && fact /sys/module/kvm/initstate
for d in /sys/module/kvm_amd /sys/module/kvm_intel /sys/module/kvm_hv; do
  [ -d $d ] || continue
  for f in $d/initstate $d/parameters/*; do
    [ -f $f ] && fact $f 2>/dev/null
  done
done
if [ -c /dev/kvm ]; then
  echo "{NODE} /dev/kvm $($bb stat -c '%t %T %a %u %g' /dev/kvm)"
else
  echo "{NODE} /dev/kvm missing"
fi
[ -x /bin/l2 ] && /bin/l2
echo {END}
if $bb grep -q xmlnest_e2e_hang /proc/cmdline; then
  echo {HANG}
  while :; do $bb sleep 60; done
fi
$bb poweroff -f
"""
CMDLINE = "console=ttyS0 quiet no5lvl"
POWER9_CMDLINE = "console=hvc0 quiet"


class GuestError(AssertionError):
    """A guest that did not boot, did not power off in time, or printed no usable report."""


@dataclass(frozen=True)
class DeviceNode:
    """A character device as the guest's ``stat`` saw it."""

    major: int
    minor: int
    mode: int
    uid: int
    gid: int


@dataclass(frozen=True)
class L1Report:
    """What the guest's /init printed besides its CPU flags: the KVM side of an L1."""

    modules: Mapping[str, str]  # module -> "loaded" or what insmod said when it failed
    kernel_log: tuple[str, ...]  # dmesg lines mentioning kvm or svm, as the guest printed them
    files: Mapping[str, str]  # host path -> the text the guest read there
    dev_kvm: DeviceNode | None  # None: no /dev/kvm
    l2: tuple[str, ...]  # the lines of /bin/l2 (tests/guest/l2.c), markers included

    def loaded(self, module: str) -> bool:
        return self.modules.get(module) == "loaded"

    def logged(self, text: str) -> bool:
        """Whether a kernel log line contains ``text``."""
        return any(text in line for line in self.kernel_log)

    @property
    def l2_output(self) -> str | None:
        """What the L2 wrote to its I/O port, if it ran to its ``hlt``; else None."""
        out = [ln.split(" ", 1)[1] for ln in self.l2 if ln.startswith(L2 + "-OUT ")]
        halted = any(ln.startswith(L2 + "-EXIT hlt ") for ln in self.l2)
        return out[0] if len(out) == 1 and halted else None


@dataclass(frozen=True)
class Booted:
    """What one boot showed: the guest's view, QEMU's command line, libvirt's live XML."""

    name: str
    flags: frozenset[str]  # "svm" and/or "vmx", as the guest's /proc/cpuinfo listed them
    console: str = field(repr=False)
    cpu_arg: str  # QEMU's -cpu argument, e.g. "Opteron_G2,svm=on"
    qemu_log: str = field(repr=False)  # /var/log/libvirt/qemu/NAME.log for this start
    live_xml: bytes = field(repr=False)  # `virsh dumpxml NAME` while the guest ran
    l1: L1Report = field(repr=False)
    machine_arg: str = ""  # QEMU's -machine argument, e.g. "pseries-7.2,...,cap-nested-hv=on"

    def why(self) -> str:
        """Everything a failed assertion about this boot needs to say why."""
        return (
            f"{self.name}: guest flags {sorted(self.flags)}, modules {dict(self.l1.modules)}\n"
            f"-cpu {self.cpu_arg}\n-machine {self.machine_arg}\n"
            f"--- console ---\n{self.console}\n--- QEMU log ---\n{self.qemu_log}"
        )


def _lines(console: str) -> list[str]:
    return console.replace("\r", "").splitlines()


def _report(console: str) -> list[str]:
    """The lines between BEGIN and END, only their line endings dropped."""
    lines = _lines(console)
    # the console may still be printing the kernel's last line when BEGIN comes
    begin = [i for i, ln in enumerate(lines) if ln.rstrip().endswith(BEGIN)]
    end = [i for i, ln in enumerate(lines) if ln.strip() == END]
    if not begin or not end or end[0] < begin[0]:
        raise GuestError(f"the guest's report is incomplete (no {BEGIN}/{END}):\n{console}")
    return lines[begin[0] + 1 : end[0]]


def l1_report(console: str) -> L1Report:
    """The KVM part of the guest's report; :class:`GuestError` if it is cut short."""
    modules: dict[str, str] = {}
    kernel_log: list[str] = []
    files: dict[str, list[str]] = {}
    current: list[str] | None = None
    node: DeviceNode | None = None
    nodes = 0
    l2: list[str] = []
    for line in _report(console):
        word, _, rest = line.partition(" ")
        if word == MODULE:
            state, _, module = rest.partition(" ")
            module, _, said = module.partition(": ")
            modules[module] = "loaded" if state == "loaded" else said or state
        elif word == KMSG:
            kernel_log.append(rest)
        elif word == FILE:
            current = files.setdefault(rest, [])
        elif word == LINE or line == LINE:
            if current is None:
                raise GuestError(f"a {LINE} before any {FILE}:\n{console}")
            current.append(rest)
        elif word == NODE:
            nodes += 1
            fields = rest.split()
            if fields[1:] != ["missing"]:
                major, minor, mode, uid, gid = fields[1:]
                node = DeviceNode(int(major, 16), int(minor, 16), int(mode, 8), int(uid), int(gid))
        elif word.startswith(L2 + "-"):
            l2.append(line)
    if nodes != 1:
        raise GuestError(f"the guest did not report /dev/kvm:\n{console}")
    text = {path: "".join(ln + "\n" for ln in body) for path, body in files.items()}
    return L1Report(modules, tuple(kernel_log), text, node, tuple(l2))


def host_tree(report: L1Report, root: Path) -> Path:
    """The L1's facts as a captured host tree (tests/hosts/ format) under ``root``: each
    file the guest read, and ``dev/kvm.fixture-node`` for its /dev/kvm."""
    for path, text in report.files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    if report.dev_kvm is not None:
        node = report.dev_kvm
        (root / "dev").mkdir(parents=True, exist_ok=True)
        (root / "dev" / "kvm.fixture-node").write_text(
            "# /dev/kvm as the L1 guest's stat saw it (tests/realvirt.py host_tree)\n"
            f"kind = char\nrdev = {node.major}:{node.minor}\nmode = {node.mode:04o}\n"
            f"uid = {node.uid}\ngid = {node.gid}\n"
        )
    return root


def guest_flags(console: str) -> frozenset[str]:
    """The svm/vmx flags the guest reported; :class:`GuestError` if the report is unusable."""
    report = [ln.strip() for ln in _report(console)]
    counts = [ln.split()[1:] for ln in report if ln.startswith(COUNT + " ")]
    if len(counts) != 1 or len(counts[0]) != 1 or not counts[0][0].isdigit():
        raise GuestError(f"the guest did not say how many CPU flags it read:\n{console}")
    if int(counts[0][0]) < MIN_FLAGS:
        raise GuestError(
            f"the guest read {counts[0][0]} CPU flags from /proc/cpuinfo, so its svm/vmx "
            f"verdict means nothing (busybox aborting under 5-level paging?):\n{console}"
        )
    return frozenset(ln.split()[1] for ln in report if ln.startswith(FLAG + " "))


def _argument(option: str, qemu_log: str) -> str:
    found = [m.group(1) for m in re.finditer(rf"^{option} (\S+)", qemu_log, flags=re.MULTILINE)]
    if not found:
        raise GuestError(f"no {option} argument in the QEMU log:\n{qemu_log}")
    return found[-1]


def cpu_argument(qemu_log: str) -> str:
    """The ``-cpu`` argument of the last QEMU command line in a libvirt QEMU log."""
    return _argument("-cpu", qemu_log)


def machine_argument(qemu_log: str) -> str:
    """The ``-machine`` argument of the last QEMU command line in a libvirt QEMU log."""
    return _argument("-machine", qemu_log)


def _is_power(xml: bytes) -> bool:
    return re.search(rb"<type\b[^>]*\barch=['\"]ppc64", xml) is not None


def to_tcg(xml: bytes) -> bytes:
    """The same domain with ``type='kvm'`` made ``type='qemu'``: exactly one line changes."""
    out = re.sub(rb"(<domain\b[^>]*?\btype=)(['\"])kvm\2", rb"\1\2qemu\2", xml, count=1)
    before, after = xml.splitlines(), out.splitlines()
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    if len(changed) != 1 or len(before) != len(after):
        raise GuestError(f"expected exactly one line to change from kvm to qemu, got {changed}")
    return out


def domain_name(xml: bytes) -> str:
    m = re.search(rb"<name>([^<]+)</name>", xml)
    if not m:
        raise GuestError("the domain XML has no <name>")
    return m.group(1).decode()


def is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a program interpreter (runs without a libc)."""
    head = path.read_bytes()
    if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only: the guest is x86_64
        return False
    (phoff,) = struct.unpack_from("<Q", head, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
    types = (struct.unpack_from("<I", head, phoff + i * phentsize)[0] for i in range(phnum))
    return 3 not in types  # PT_INTERP


def newest_kernel(boot: Path = Path("/boot")) -> Path | None:
    kernels = sorted(
        boot.glob("vmlinuz-*"), key=lambda p: [int(x) for x in re.findall(r"\d+", p.name)]
    )
    return kernels[-1] if kernels else None


def kernel_release(kernel: Path) -> str:
    """``6.1.0-57-amd64`` for ``/boot/vmlinuz-6.1.0-57-amd64``."""
    return kernel.name.split("-", 1)[1]


STATIC_LIBC = Path("/usr/lib/x86_64-linux-gnu/libc.a")


def module_chain(module: str, release: str, base: Path = Path("/")) -> list[Path]:
    """The ``.ko`` files ``modprobe --show-depends MODULE`` would insmod, in order, from the
    modules of kernel ``release`` under ``base`` (not necessarily the running kernel's)."""
    proc = subprocess.run(
        ["modprobe", "-d", str(base), "-S", release, "--show-depends", module],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise GuestError(f"modprobe --show-depends {module} ({release}): {proc.stderr.strip()}")
    chain = [Path(ln.split()[1]) for ln in proc.stdout.splitlines() if ln.startswith("insmod ")]
    if not chain or chain[-1].name != f"{module}.ko":
        raise GuestError(f"modprobe --show-depends {module} said:\n{proc.stdout}")
    return chain


def build_l2(folder: Path) -> Path:
    """tests/guest/l2.c compiled with ``gcc -static`` into ``folder``."""
    out = folder / "l2"
    proc = subprocess.run(
        ["gcc", "-static", "-O2", "-Wall", "-Werror", "-o", str(out), str(L2_SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not is_static_elf(out):
        raise GuestError(f"gcc -static {L2_SOURCE} failed:\n{proc.stderr}")
    return out


def missing() -> tuple[str, str] | None:
    """(what, how) for the first thing a real guest needs that this machine lacks."""
    apt = "apt-get install --no-install-recommends"
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        return "an x86_64 Linux host", "the guest is an x86_64 Debian kernel"
    if os.geteuid() != 0:
        return "root", "qemu:///system's logs in /var/log/libvirt/qemu are root's"
    for tool, pkg in (("virsh", "libvirt-clients"), ("cpio", "cpio")):
        if not shutil.which(tool):
            return tool, f"{apt} {pkg}"
    if not BUSYBOX.is_file() or not is_static_elf(BUSYBOX):
        return f"a static {BUSYBOX}", f"{apt} busybox-static"
    kernel = newest_kernel()
    if kernel is None:
        return "a kernel in /boot/vmlinuz-*", f"{apt} linux-image-amd64"
    if not (Path("/lib/modules") / kernel_release(kernel) / "modules.dep").is_file():
        return f"the modules of {kernel}", f"{apt} linux-image-amd64"
    for tool, pkg in (("modprobe", "kmod"), ("gcc", "gcc")):
        if not shutil.which(tool):
            return tool, f"{apt} {pkg}"
    if not STATIC_LIBC.is_file():
        return f"a static libc ({STATIC_LIBC}) for gcc -static", f"{apt} libc6-dev"
    try:
        proc = subprocess.run(
            ["virsh", "-c", URI, "version"], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        proc = subprocess.CompletedProcess([], 1, "", "virsh version timed out")
    if proc.returncode != 0 or "Running hypervisor: QEMU" not in proc.stdout:
        said = ((proc.stderr or proc.stdout).strip().splitlines() or ["nothing"])[-1]
        return (
            "a running libvirtd with QEMU",
            f"{apt} libvirt-daemon-system qemu-system-x86, then as root `virtlogd -d` and "
            f"`libvirtd -d` (virsh -c {URI} version said: {said})",
        )
    return None


def build_initramfs(
    out: Path, busybox: Path, modules: Sequence[Path] = (), l2: Path | None = None
) -> Path:
    """A gzipped newc cpio at ``out``: a static busybox, INIT as /init, the kernel
    ``modules`` (insmod-ed by INIT in this order) and, if given, the L2 program as /bin/l2."""
    root = out.with_name(out.name + ".d")
    for sub in ("bin", "proc", "sys", "dev", "modules"):
        (root / sub).mkdir(parents=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    (root / "init").write_text(INIT)
    (root / "init").chmod(0o755)
    for module in modules:
        shutil.copy(module, root / "modules" / module.name)
    order = "".join(m.name.removesuffix(".ko") + "\n" for m in modules)
    (root / "modules" / "order").write_text(order)
    if l2 is not None:
        shutil.copy(l2, root / "bin" / "l2")
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    proc = subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet"],
        input="\n".join(names).encode() + b"\n",
        cwd=root,
        capture_output=True,
        check=True,
    )
    shutil.rmtree(root)
    out.write_bytes(gzip.compress(proc.stdout, compresslevel=1))
    out.chmod(0o644)
    return out


# --- POWER9: Debian's ppc64el kernel and busybox ------------------------------------------

POWER9_PACKAGES = ("linux-image-powerpc64le", "busybox-static")
POWER9_HOW = (
    "as root: dpkg --add-architecture ppc64el && apt-get update && apt-get install "
    "--no-install-recommends qemu-system-ppc (the tests download the ppc64el kernel and "
    "busybox themselves)"
)


@dataclass(frozen=True)
class Power9Files:
    """An unpacked ppc64el kernel with its kvm-hv chain, and a static ppc64el busybox."""

    kernel: Path
    busybox: Path
    modules: tuple[Path, ...]


def missing_power9() -> tuple[str, str] | None:
    """(what, how) for the first thing a POWER9 guest needs that this machine lacks."""
    for tool in ("qemu-system-ppc64", "dpkg-deb", "apt-get", "depmod"):
        if not shutil.which(tool):
            return tool, POWER9_HOW
    if (CACHE / "ppc64el" / "done").is_file():
        return None
    proc = subprocess.run(
        ["apt-cache", "policy", f"{POWER9_PACKAGES[0]}:ppc64el"],
        capture_output=True,
        text=True,
        check=False,
    )
    if "Candidate:" not in proc.stdout or "Candidate: (none)" in proc.stdout:
        return "Debian's ppc64el packages in apt's lists", POWER9_HOW
    return None


def _apt_download(folder: Path, *packages: str) -> list[Path]:
    proc = subprocess.run(
        ["apt-get", "download", "-q", *packages],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise GuestError(f"apt-get download {' '.join(packages)}:\n{proc.stderr}")
    return sorted(folder.glob("*.deb"))


def power9_files(cache: Path = CACHE) -> Power9Files:
    """Debian's ppc64el kernel, its kvm-hv module chain and busybox-static, unpacked under
    ``cache``/ppc64el (downloaded once with ``apt-get download``, kept between runs)."""
    home = cache / "ppc64el"
    root = home / "root"
    if not (home / "done").is_file():
        shutil.rmtree(home, ignore_errors=True)
        debs = home / "debs"
        debs.mkdir(parents=True)
        (meta,) = _apt_download(debs, f"{POWER9_PACKAGES[0]}:ppc64el")
        depends = subprocess.run(
            ["dpkg-deb", "-f", str(meta), "Depends"], capture_output=True, text=True, check=True
        ).stdout
        image = re.search(r"linux-image-[0-9][^\s,(]*", depends)
        if image is None:
            raise GuestError(f"{meta.name} depends on no kernel image: {depends!r}")
        _apt_download(debs, f"{image.group(0)}:ppc64el", f"{POWER9_PACKAGES[1]}:ppc64el")
        for deb in sorted(debs.glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        for release in sorted(p.name for p in (root / "lib" / "modules").iterdir()):
            subprocess.run(["depmod", "-b", str(root), release], capture_output=True, check=True)
        shutil.rmtree(debs)
        (home / "done").write_text("")
    kernels = sorted((root / "boot").glob("vmlinux-*"))
    if len(kernels) != 1:
        raise GuestError(f"expected one ppc64el kernel in {root / 'boot'}, found {kernels}")
    release = kernels[0].name.removeprefix("vmlinux-")
    chain = module_chain("kvm-hv", release, root)
    return Power9Files(kernels[0], root / "bin" / "busybox", tuple(chain))


@dataclass
class RealVirt:
    """One session's guests on qemu:///system, named ``PREFIX…``, files in ``folder``."""

    folder: Path
    prefix: str
    kernel: Path
    initrd: Path
    timeout: float = TIMEOUT
    defined: list[str] = field(default_factory=list)
    power9_kernel: Path | None = None  # set by prepare_power9
    power9_initrd: Path | None = None

    def virsh(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["virsh", "-q", "-c", URI, *args], capture_output=True, text=True, timeout=60
        )
        if check and proc.returncode != 0:
            raise GuestError(f"virsh {' '.join(args)}: {proc.stderr.strip()}")
        return proc

    def console_path(self, name: str) -> Path:
        return self.folder / f"{name}.console"

    def guest_xml(
        self, name: str, cpu: str = "", *, domain_type: str = "kvm", cmdline: str = CMDLINE
    ) -> bytes:
        """A bootable domain named PREFIX+name: direct kernel boot, serial console to a file.

        ``cpu`` is the ``<cpu>`` element's text (indented by two spaces), or empty for none.
        """
        full = self.prefix + name
        cpu_block = "".join(f"  {ln}\n" for ln in cpu.strip().splitlines())
        return (
            f"<domain type='{domain_type}'>\n"
            f"  <name>{full}</name>\n"
            "  <memory unit='MiB'>256</memory>\n"
            "  <vcpu>1</vcpu>\n"
            "  <os>\n"
            "    <type arch='x86_64' machine='pc'>hvm</type>\n"
            f"    <kernel>{self.kernel}</kernel>\n"
            f"    <initrd>{self.initrd}</initrd>\n"
            f"    <cmdline>{cmdline}</cmdline>\n"
            "  </os>\n"
            "  <features>\n"
            "    <acpi/>\n"
            "  </features>\n"
            f"{cpu_block}"
            "  <on_poweroff>destroy</on_poweroff>\n"
            "  <on_reboot>destroy</on_reboot>\n"
            "  <on_crash>destroy</on_crash>\n"
            "  <devices>\n"
            "    <serial type='file'>\n"
            f"      <source path='{self.console_path(full)}'/>\n"
            "      <target port='0'/>\n"
            "    </serial>\n"
            "  </devices>\n"
            "</domain>\n"
        ).encode()

    def define(self, xml: bytes) -> str:
        """``virsh define --validate`` a domain whose name carries this session's prefix."""
        name = domain_name(xml)
        if not name.startswith(self.prefix):
            raise GuestError(f"domain {name!r} does not start with {self.prefix!r}")
        path = self.folder / f"{name}.xml"
        path.write_bytes(xml)
        self.defined.append(name)  # before defining: cleanup must see a half-made domain
        self.virsh("define", "--validate", str(path))
        return name

    def start(self, name: str) -> bytes:
        """Start a defined domain; its live XML, read as soon as ``virsh start`` returns."""
        self.virsh("start", name)
        live = self.virsh("dumpxml", name).stdout.encode()
        if not re.search(rb"<domain [^>]*\bid=", live):
            raise GuestError(f"{name} was no longer running when its live XML was read")
        return live

    def state(self, name: str) -> str:
        return self.virsh("domstate", name).stdout.strip()

    def wait_off(self, name: str, timeout: float | None = None) -> None:
        """Wait for the guest to power off; destroy it and fail with its console if it won't."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while self.state(name) != "shut off":
            if time.monotonic() > deadline:
                self.virsh("destroy", name, check=False)
                raise GuestError(
                    f"{name} did not power off within {timeout:.0f} s and was destroyed; "
                    f"its console:\n{self.console(name)}\n--- QEMU log ---\n"
                    f"{self.qemu_log(name)}"
                )
            time.sleep(0.2)

    def console(self, name: str) -> str:
        path = self.console_path(name)
        return path.read_text(errors="replace") if path.exists() else "(no console output)"

    def qemu_log(self, name: str) -> str:
        path = QEMU_LOG_DIR / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def boot(self, xml: bytes, name: str) -> Booted:
        """Define, start and run a guest to its power-off; what it showed. ``name`` must be
        the domain's ``<name>`` (PREFIX included)."""
        if domain_name(xml) != name:
            raise GuestError(f"the XML names {domain_name(xml)!r}, not {name!r}")
        (booted,) = self.boot_all([xml])
        return booted

    def boot_all(self, guests: Sequence[bytes]) -> list[Booted]:
        """:meth:`boot` for several domains at once: all are started before the first is
        waited for, so they boot side by side (TCG runs each vCPU in its own thread)."""
        started: list[tuple[str, bytes, float]] = []
        for xml in guests:
            name = self.define(xml)
            try:
                started.append((name, self.start(name), self._timeout_of(xml)))
            except GuestError as e:
                raise GuestError(f"{e}\n{self.qemu_log(name)}") from None
        booted = []
        for name, live, timeout in started:
            self.wait_off(name, timeout)
            booted.append(self._booted(name, live))
        return booted

    def _timeout_of(self, xml: bytes) -> float:
        return max(self.timeout, POWER9_TIMEOUT) if _is_power(xml) else self.timeout

    def _booted(self, name: str, live: bytes) -> Booted:
        console = self.console(name)
        log = self.qemu_log(name)
        flags = frozenset() if _is_power(live) else guest_flags(console)
        return Booted(
            name,
            flags,
            console,
            cpu_argument(log),
            log,
            live,
            l1_report(console),
            machine_argument(log),
        )

    # --- POWER9 --------------------------------------------------------------------------

    def prepare_power9(self, files: Power9Files) -> None:
        """Copy the ppc64el kernel beside the x86 one and build its initramfs (kvm-hv)."""
        if self.power9_kernel is not None:
            return
        kernel = self.folder / "vmlinux-ppc64el"
        shutil.copy(files.kernel, kernel)
        kernel.chmod(0o644)
        self.power9_initrd = build_initramfs(
            self.folder / "initrd-ppc64el.img", files.busybox, files.modules
        )
        self.power9_kernel = kernel

    def pseries_xml(self, name: str, features: str = "", *, cmdline: str = POWER9_CMDLINE) -> bytes:
        """A bootable pseries (POWER9) ``type='kvm'`` domain named PREFIX+name: direct kernel
        boot, console to a file. ``features`` is the ``<features>`` element's text."""
        if self.power9_kernel is None or self.power9_initrd is None:
            raise GuestError("prepare_power9 first")
        full = self.prefix + name
        block = "".join(f"  {ln}\n" for ln in features.strip().splitlines())
        return (
            "<domain type='kvm'>\n"
            f"  <name>{full}</name>\n"
            "  <memory unit='MiB'>512</memory>\n"
            "  <vcpu>1</vcpu>\n"
            "  <os>\n"
            "    <type arch='ppc64le' machine='pseries'>hvm</type>\n"
            f"    <kernel>{self.power9_kernel}</kernel>\n"
            f"    <initrd>{self.power9_initrd}</initrd>\n"
            f"    <cmdline>{cmdline}</cmdline>\n"
            "  </os>\n"
            f"{block}"
            "  <cpu mode='custom' match='exact' check='none'>\n"
            "    <model fallback='forbid'>POWER9</model>\n"
            "  </cpu>\n"
            "  <on_poweroff>destroy</on_poweroff>\n"
            "  <on_reboot>destroy</on_reboot>\n"
            "  <on_crash>destroy</on_crash>\n"
            "  <devices>\n"
            "    <controller type='usb' model='none'/>\n"
            "    <console type='file'>\n"
            f"      <source path='{self.console_path(full)}'/>\n"
            "      <target type='serial' port='0'/>\n"
            "    </console>\n"
            "    <memballoon model='none'/>\n"
            "  </devices>\n"
            "</domain>\n"
        ).encode()

    def running_domain_xml(self, xml: bytes) -> tuple[bytes, bytes]:
        """(live, inactive) XML of the domain while it runs (``virsh dumpxml`` and
        ``virsh dumpxml --inactive``); the domain is then destroyed and undefined."""
        name = self.define(xml)
        try:
            live = self.start(name)
            inactive = self.virsh("dumpxml", "--inactive", name).stdout.encode()
        finally:
            self.remove(name)
        return live, inactive

    def remove(self, name: str) -> None:
        """Destroy (if running) and undefine one of this session's domains, drop its files."""
        if self.virsh("domstate", name, check=False).returncode == 0:
            self.virsh("destroy", name, check=False)
            self.virsh("undefine", name, check=False)
        (QEMU_LOG_DIR / f"{name}.log").unlink(missing_ok=True)
        self.console_path(name).unlink(missing_ok=True)
        (self.folder / f"{name}.xml").unlink(missing_ok=True)

    def close(self) -> None:
        """Remove every domain this session defined (and nothing else) and its folder."""
        for name in dict.fromkeys(self.defined):
            self.remove(name)
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def open_session(prefix: str | None = None) -> Iterator[RealVirt]:
    """A :class:`RealVirt` whose kernel and initramfs the libvirt-qemu user can read (a
    0755 folder, 0644 files: pytest's own tmp folders may be 0700); removed afterwards."""
    kernel = newest_kernel()
    if kernel is None:
        raise GuestError("no /boot/vmlinuz-*")
    folder = Path(tempfile.mkdtemp(prefix="xmlnest-e2e-"))
    folder.chmod(0o755)
    virt = RealVirt(
        folder,
        prefix or f"{PREFIX}{os.getpid()}-",
        folder / "vmlinuz",
        folder / "initrd.img",
    )
    try:
        shutil.copy(kernel, virt.kernel)
        virt.kernel.chmod(0o644)
        modules = module_chain("kvm-amd", kernel_release(kernel))
        build_initramfs(virt.initrd, BUSYBOX, modules, build_l2(folder))
        yield virt
    finally:
        virt.close()


def session() -> Iterator[RealVirt]:
    """The body of a session fixture: ``need()`` what is missing, else an open session."""
    from tests.conftest import need

    lack = missing()
    if lack is not None:
        need(*lack)
    with open_session() as virt:
        yield virt


# --- capture: the fixtures in tests/libvirt-xml/live/ -------------------------------------------

STABLE = "/var/lib/xmlnest-e2e"
CAPTURE_CPU = """<cpu mode='custom' match='exact' check='partial'>
  <model fallback='allow'>Opteron_G2</model>
  <feature policy='require' name='svm'/>
</cpu>"""


def capture(out: Path) -> None:
    """Write the four live/inactive fixtures of tests/libvirt-xml/live/ into ``out``."""
    lack = missing()
    if lack is not None:
        raise SystemExit(f"needs {lack[0]}: {lack[1]}")
    with open_session(prefix=f"{PREFIX}capture-") as virt:
        xml = to_tcg(virt.guest_xml("amd", CAPTURE_CPU))
        live, inactive = virt.running_domain_xml(xml)
        stable = str(virt.folder).encode()
        for label, data in (("running", live), ("inactive", inactive)):
            (out / f"qemu-system-{label}.xml").write_bytes(data.replace(stable, STABLE.encode()))
    for label, extra in (("running", []), ("inactive", ["--inactive"])):
        proc = subprocess.run(
            ["virsh", "-q", "-c", "test:///default", "dumpxml", *extra, "test"],
            capture_output=True,
            check=True,
        )
        (out / f"test-driver-{label}.xml").write_bytes(proc.stdout)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "capture":
        raise SystemExit("usage: python -m tests.realvirt capture DIR")
    capture(Path(sys.argv[2]))
