"""A real libvirtd + QEMU (TCG) for tests: boot a tiny guest from domain XML, report what it saw.

One :class:`RealVirt` per test session (``session()``; the ``realvirt`` fixture in
tests/conftest.py) talks to ``qemu:///system`` through ``virsh``. It copies the host's
Debian kernel and a busybox initramfs into a folder the ``libvirt-qemu`` user can read;
the initramfs's ``/init`` prints the ``svm``/``vmx`` flags of the guest's ``/proc/cpuinfo``
between markers and powers off. :meth:`RealVirt.boot` defines a domain (``virsh define
--validate``), starts it, reads its live XML while it runs, waits for the power-off
(``virsh destroy`` after a timeout, failing with the console log) and returns the guest's
flags, QEMU's ``-cpu`` argument and the live XML. Every domain it defined is undefined and
every file it made is removed when the session ends, even after a failure.

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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

URI = "qemu:///system"
QEMU_LOG_DIR = Path("/var/log/libvirt/qemu")
BUSYBOX = Path("/bin/busybox")
TIMEOUT = 90.0  # seconds a guest may take to power off before it is destroyed

BEGIN = "XMLNEST-E2E-BEGIN"
END = "XMLNEST-E2E-END"
COUNT = "XMLNEST-E2E-FLAGCOUNT"  # how many flags /proc/cpuinfo listed: proves grep read it
FLAG = "XMLNEST-E2E-FLAG"
HANG = "XMLNEST-E2E-HANG"
PREFIX = "xmlnest-e2e-"  # every domain a session defines starts with it
MIN_FLAGS = 10  # every x86 CPU QEMU models lists far more (fpu, tsc, msr, ...)

# The guest's whole userland. `no5lvl` on the kernel command line matters: with QEMU 7.2's
# `-cpu max` under TCG, 5-level paging makes every busybox command abort, and an empty flag
# list would then look exactly like "no svm"; the FLAGCOUNT line tells the two apart.
# `xmlnest_e2e_hang` on the command line makes it wait forever (the timeout's own test).
INIT = f"""#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
echo {BEGIN}
flags=$(/bin/busybox grep -m1 '^flags' /proc/cpuinfo | /bin/busybox cut -d: -f2)
echo "{COUNT} $(echo $flags | /bin/busybox wc -w)"
for f in $flags; do
  case $f in svm|vmx) echo "{FLAG} $f";; esac
done
echo {END}
if /bin/busybox grep -q xmlnest_e2e_hang /proc/cmdline; then
  echo {HANG}
  while :; do /bin/busybox sleep 60; done
fi
/bin/busybox poweroff -f
"""
CMDLINE = "console=ttyS0 quiet no5lvl"


class GuestError(AssertionError):
    """A guest that did not boot, did not power off in time, or printed no usable report."""


@dataclass(frozen=True)
class Booted:
    """What one boot showed: the guest's view, QEMU's command line, libvirt's live XML."""

    name: str
    flags: frozenset[str]  # "svm" and/or "vmx", as the guest's /proc/cpuinfo listed them
    console: str = field(repr=False)
    cpu_arg: str  # QEMU's -cpu argument, e.g. "Opteron_G2,svm=on"
    qemu_log: str = field(repr=False)  # /var/log/libvirt/qemu/NAME.log for this start
    live_xml: bytes = field(repr=False)  # `virsh dumpxml NAME` while the guest ran


def guest_flags(console: str) -> frozenset[str]:
    """The svm/vmx flags the guest reported; :class:`GuestError` if the report is unusable."""
    lines = [ln.strip() for ln in console.replace("\r", "").splitlines()]
    if BEGIN not in lines or END not in lines:
        raise GuestError(f"the guest's report is incomplete (no {BEGIN}/{END}):\n{console}")
    report = lines[lines.index(BEGIN) + 1 : lines.index(END)]
    counts = [ln.split()[1:] for ln in report if ln.startswith(COUNT + " ")]
    if len(counts) != 1 or len(counts[0]) != 1 or not counts[0][0].isdigit():
        raise GuestError(f"the guest did not say how many CPU flags it read:\n{console}")
    if int(counts[0][0]) < MIN_FLAGS:
        raise GuestError(
            f"the guest read {counts[0][0]} CPU flags from /proc/cpuinfo, so its svm/vmx "
            f"verdict means nothing (busybox aborting under 5-level paging?):\n{console}"
        )
    return frozenset(ln.split()[1] for ln in report if ln.startswith(FLAG + " "))


def cpu_argument(qemu_log: str) -> str:
    """The ``-cpu`` argument of the last QEMU command line in a libvirt QEMU log."""
    found = [m.group(1) for m in re.finditer(r"^-cpu (\S+)", qemu_log, flags=re.MULTILINE)]
    if not found:
        raise GuestError(f"no -cpu argument in the QEMU log:\n{qemu_log}")
    return found[-1]


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
    if newest_kernel() is None:
        return "a kernel in /boot/vmlinuz-*", f"{apt} linux-image-amd64"
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


def build_initramfs(folder: Path) -> Path:
    """A gzipped newc cpio holding a static busybox and INIT as /init."""
    root = folder / "initramfs"
    for sub in ("bin", "proc", "sys", "dev"):
        (root / sub).mkdir(parents=True)
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    (root / "init").write_text(INIT)
    (root / "init").chmod(0o755)
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    proc = subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet"],
        input="\n".join(names).encode() + b"\n",
        cwd=root,
        capture_output=True,
        check=True,
    )
    shutil.rmtree(root)
    out = folder / "initrd.img"
    out.write_bytes(gzip.compress(proc.stdout, compresslevel=1))
    return out


@dataclass
class RealVirt:
    """One session's guests on qemu:///system, named ``PREFIX…``, files in ``folder``."""

    folder: Path
    prefix: str
    kernel: Path
    initrd: Path
    timeout: float = TIMEOUT
    defined: list[str] = field(default_factory=list)

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

    def wait_off(self, name: str) -> None:
        """Wait for the guest to power off; destroy it and fail with its console if it won't."""
        deadline = time.monotonic() + self.timeout
        while self.state(name) != "shut off":
            if time.monotonic() > deadline:
                self.virsh("destroy", name, check=False)
                raise GuestError(
                    f"{name} did not power off within {self.timeout:.0f} s and was destroyed; "
                    f"its console:\n{self.console(name)}"
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
        self.define(xml)
        try:
            live = self.start(name)
        except GuestError as e:
            raise GuestError(f"{e}\n{self.qemu_log(name)}") from None
        self.wait_off(name)
        console = self.console(name)
        log = self.qemu_log(name)
        return Booted(name, guest_flags(console), console, cpu_argument(log), log, live)

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
        build_initramfs(folder)
        for f in (virt.kernel, virt.initrd):
            f.chmod(0o644)
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
