#!/usr/bin/env python3
"""Benchmark xmlnest against floors it cannot beat by much, side by side in one run.

    python benchmarks/run.py [--quick] [--with-virt-xml]

Builds its inputs (x86 domains from ../shared/corpus, or synthesised ~2 KB domains),
measures xmlnest and each baseline interleaved in the same run, and prints a Markdown
table of ratios with targets plus the machine it ran on. See benchmarks/README.md.
Uses only the standard library and lxml.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from lxml import etree

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CORPUS = REPO.parent / "shared" / "corpus"
SCHEMA_PLACES = (Path("/usr/share/libvirt/schemas"), Path("/usr/local/share/libvirt/schemas"))

# --- floors: the least work any validating filter must do ------------------------------

PARSER = (
    "etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, "
    "huge_tree=False, strip_cdata=False, remove_blank_text=False)"
)

# One document: import lxml, parse, compile domain.rng, validate, serialise to stdout.
FLOOR_ONE = f"""\
import sys
from lxml import etree
parser = {PARSER}
with open(sys.argv[2], 'rb') as fh:
    root = etree.fromstring(fh.read(), parser)
schema = etree.RelaxNG(etree.parse(sys.argv[1]))
schema.validate(root.getroottree())
sys.stdout.buffer.write(etree.tostring(root.getroottree(), encoding='utf-8'))
"""

# The same with click imported too: the stack xmlnest's command line stands on.
FLOOR_ONE_CLICK = "import click\n" + FLOOR_ONE

# Many documents in one process: walk the folder like xmlnest, then parse, validate and
# serialise each file (the schema compiled once).
FLOOR_MANY = f"""\
import os, sys
from lxml import etree
parser = {PARSER}
schema = etree.RelaxNG(etree.parse(sys.argv[1]))
n = 0
for dirpath, dirnames, filenames in os.walk(sys.argv[2]):
    dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
    for name in sorted(filenames):
        if not name.endswith('.xml'):
            continue
        with open(os.path.join(dirpath, name), 'rb') as fh:
            root = etree.fromstring(fh.read(), parser)
        schema.validate(root.getroottree())
        etree.tostring(root.getroottree(), encoding='utf-8')
        n += 1
print(n)
"""

# The bulk floor that also replaces, durably, the files named in the list argv[3] (the
# ones xmlnest -i changes), the way xmlnest's AtomicBatch does: per batch of 64 walked
# files, each changed file's serialisation goes to a temp file beside it (writeback
# started with sync_file_range on Linux), then all are fsynced, then renamed, then each
# folder that saw a rename is fsynced once.
FLOOR_DURABLE = f"""\
import os, sys
from lxml import etree
parser = {PARSER}
schema = etree.RelaxNG(etree.parse(sys.argv[1]))
root_dir = sys.argv[2]
with open(sys.argv[3], encoding='utf-8') as fh:
    changed = set(fh.read().splitlines())
start = None
if sys.platform.startswith('linux'):
    import ctypes
    start = ctypes.CDLL(None, use_errno=True).sync_file_range
    start.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
staged, walked, n = [], 0, 0

def commit():
    for fd, tmp, path in staged:
        os.fsync(fd)
        os.close(fd)
    for fd, tmp, path in staged:
        os.replace(tmp, path)
    for folder in sorted({{os.path.dirname(path) for _, _, path in staged}}):
        dfd = os.open(folder, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)
    staged.clear()

for dirpath, dirnames, filenames in os.walk(root_dir):
    dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
    for name in sorted(filenames):
        if not name.endswith('.xml'):
            continue
        path = os.path.join(dirpath, name)
        with open(path, 'rb') as fh:
            root = etree.fromstring(fh.read(), parser)
        schema.validate(root.getroottree())
        data = etree.tostring(root.getroottree(), encoding='utf-8')
        if os.path.relpath(path, root_dir) in changed:
            tmp = os.path.join(dirpath, '.floor-' + name + '.tmp')
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            os.write(fd, data)
            if start is not None:
                start(fd, 0, 0, 2)  # SYNC_FILE_RANGE_WRITE
            staged.append((fd, tmp, path))
            n += 1
        walked += 1
        if walked % 64 == 0:
            commit()
commit()
print(n)
"""

# --- synthesised domains (used when the corpus is absent, and for the pipe row) --------

SYNTH = """\
<domain type='kvm'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory unit='KiB'>4194304</memory>
  <currentMemory unit='KiB'>4194304</currentMemory>
  <vcpu placement='static'>4</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-8.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
    <vmport state='off'/>
  </features>
{cpu}  <clock offset='utc'>
    <timer name='rtc' tickpolicy='catchup'/>
    <timer name='pit' tickpolicy='delay'/>
    <timer name='hpet' present='no'/>
  </clock>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/{name}.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
    <controller type='usb' index='0' model='qemu-xhci' ports='15'>
      <address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>
    </controller>
    <controller type='pci' index='0' model='pcie-root'/>
    <interface type='network'>
      <mac address='52:54:00:{mac}'/>
      <source network='default'/>
      <model type='virtio'/>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </interface>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
    <memballoon model='virtio'>
      <address type='pci' domain='0x0000' bus='0x05' slot='0x00' function='0x0'/>
    </memballoon>
  </devices>
</domain>
"""

CPUS = (
    "  <cpu mode='host-model' check='partial'/>\n",
    "",
    "  <cpu mode='host-passthrough' check='none' migratable='on'/>\n",
    "  <cpu mode='custom' match='exact' check='partial'>\n"
    "    <model fallback='allow'>Skylake-Client-IBRS</model>\n"
    "  </cpu>\n",
    "  <cpu mode='custom' match='exact' check='partial'>\n"
    "    <model fallback='allow'>Haswell-noTSX</model>\n"
    "    <feature policy='require' name='vmx'/>\n"
    "  </cpu>\n",
)


def synth(i: int, cpu: str = CPUS[0]) -> bytes:
    mac = ":".join(f"{(i >> s) & 0xFF:02x}" for s in (16, 8, 0))
    uuid = f"5b0f1c2e-8d4a-4e61-9a3f-{i:012x}"
    return SYNTH.format(name=f"bench-{i:05d}", uuid=uuid, cpu=cpu, mac=mac).encode()


# --- measuring ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Run:
    wall: float  # seconds
    rc: int
    maxrss_kib: int  # the child's peak RSS, or its largest waited-for child's
    cpu: float  # user + system seconds, children included


def measure(
    cmd: Sequence[str], *, stdin: Path | None = None, env: dict[str, str] | None = None
) -> Run:
    """Run ``cmd`` once; wall time, exit code and its own rusage (``os.wait4``)."""
    with contextlib.ExitStack() as stack:
        fin = stack.enter_context(open(stdin, "rb")) if stdin else subprocess.DEVNULL
        t0 = time.perf_counter()
        p = subprocess.Popen(
            list(cmd), stdin=fin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
    return Run(wall, p.returncode, ru.ru_maxrss, ru.ru_utime + ru.ru_stime)


def atomic_write_cost(folder: Path, batch: int, count: int = 256) -> float:
    """Seconds per durable replace of a 2 KB file here: what -i pays per changed file.

    ``batch`` files at a time: each written to a temp file (its writeback started with
    sync_file_range on Linux when batching), then all fsynced, then all renamed, then
    the folder fsynced once. ``batch=1`` is the one-file-at-a-time way.
    """
    folder.mkdir()
    data = synth(0)
    start = None
    if batch > 1 and sys.platform.startswith("linux"):
        import ctypes

        start = ctypes.CDLL(None, use_errno=True).sync_file_range
        start.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    for i in range(count):
        (folder / f"f{i}.xml").write_bytes(data)
    os.sync()
    t0 = time.perf_counter()
    for k in range(0, count, batch):
        fds = []
        for i in range(k, min(k + batch, count)):
            fd = os.open(folder / f".t{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data)
            if start is not None:
                start(fd, 0, 0, 2)  # SYNC_FILE_RANGE_WRITE
            fds.append((i, fd))
        for _, fd in fds:
            os.fsync(fd)
            os.close(fd)
        for i, _ in fds:
            os.replace(folder / f".t{i}", folder / f"f{i}.xml")
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    per = (time.perf_counter() - t0) / count
    shutil.rmtree(folder)
    return per


def interleaved(
    cmds: dict[str, tuple[list[str], Path | None]], n: int, env: dict[str, str]
) -> dict[str, list[Run]]:
    """``n`` rounds; each round runs every command once, in a rotating order."""
    names = list(cmds)
    for name in names:  # warm the page cache and any bytecode caches
        cmd, stdin = cmds[name]
        measure(cmd, stdin=stdin, env=env)
    out: dict[str, list[Run]] = {name: [] for name in names}
    for i in range(n):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            cmd, stdin = cmds[name]
            out[name].append(measure(cmd, stdin=stdin, env=env))
    return out


def median_wall(runs: list[Run]) -> float:
    return statistics.median(r.wall for r in runs)


# --- the report -----------------------------------------------------------------------


@dataclasses.dataclass
class Row:
    what: str
    value: str
    baseline: str
    ratio: float | None
    target: str
    ok: bool | None  # None: informational or skipped
    note: str = ""


def was(what: str, value: str, baseline: str, ratio: float, limit: float, below: bool) -> Row:
    """A row kept for comparison, informational now: its old target, met or not."""
    met = ratio < limit if below else ratio <= limit
    target = f"info (was {'<' if below else '≤'} {limit:.2f})"
    return Row(what, value, baseline, ratio, target, None, "met" if met else "not met")


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fmt_rate(seconds: float, files: int) -> str:
    return f"{fmt_s(seconds)} ({files / seconds:,.0f} files/s)"


def table(rows: list[Row]) -> str:
    head = "| measurement | xmlnest | baseline | ratio | target | result |\n"
    head += "|---|---|---|---|---|---|\n"
    lines = []
    for r in rows:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "—"
        result = {True: "PASS", False: "MISS", None: "—"}[r.ok]
        if r.note:
            result += f" ({r.note})"
        lines.append(f"| {r.what} | {r.value} | {r.baseline} | {ratio} | {r.target} | {result} |")
    return head + "\n".join(lines)


def loadavg() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def machine(xmlnest: list[str], schema: Path, env: dict[str, str], load_start: str) -> str:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "cpu model", "Processor")):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    version = subprocess.run(
        [*xmlnest, "--version"], capture_output=True, text=True, env=env
    ).stdout
    pyc = env.get("PYTHONPYCACHEPREFIX") or (
        "off (PYTHONDONTWRITEBYTECODE)" if env.get("PYTHONDONTWRITEBYTECODE") else "default"
    )

    return "\n".join(
        [
            f"- CPU: {model}; nproc {nproc} (os.cpu_count {os.cpu_count()})",
            f"- Python {platform.python_version()} ({sys.executable}); "
            f"lxml {'.'.join(map(str, etree.LXML_VERSION[:3]))}, "
            f"libxml2 {'.'.join(map(str, etree.LIBXML_VERSION))}",
            f"- {platform.system()} {platform.release()} {platform.machine()}; "
            f"load average (1/5/15 min) {load_start} at the start, {loadavg()} at the end; "
            f".pyc cache {pyc}",
            f"- {version.strip() or 'xmlnest'} ({' '.join(xmlnest)}); schema {schema}",
        ]
    )


# --- inputs ---------------------------------------------------------------------------

QEMU_TYPE = re.compile(rb"(<domain\b[^>]*?\btype=)(['\"])qemu\2")
NAME = re.compile(rb"<name>([^<]*)</name>")
LOCATED = re.compile(r"(?P<path>.+?\.xml)(?::\d+)?: (?P<rest>.*)")
NOT_AN_ERROR = re.compile(r"(would change|already nested|(warning|info|note)\b)")


def corpus_bases() -> list[bytes]:
    """x86_64 kvm/qemu domains the corpus records as valid, type='qemu' made 'kvm'."""
    index = CORPUS / "index.tsv"
    if not index.is_file():
        return []
    rows = [ln.split("\t") for ln in index.read_text().splitlines()[1:] if ln.strip()]
    out = []
    for path, root, arch, _machine, dtype, *_rest, schema in rows:
        if root == "domain" and arch == "x86_64" and dtype in ("kvm", "qemu") and schema == "valid":
            data = (CORPUS / path).read_bytes()
            out.append(QEMU_TYPE.sub(rb"\1\2kvm\2", data, count=1))
    return out


def accepted(
    xmlnest: list[str], bases: list[bytes], work: Path, env: dict[str, str], jobs: list[str]
) -> list[bytes]:
    """Keep the inputs xmlnest --check accepts (exit 0 or 1, no error line naming them).

    Lines that name a file without rejecting it are not errors: its verdict (``PATH:
    would change``, printed even with -q since 763bf69) and warning/info/note findings.
    """
    folder = work / "preflight"
    folder.mkdir()
    paths = []
    for i, data in enumerate(bases):
        p = folder / f"c{i:04d}.xml"
        p.write_bytes(data)
        paths.append(p)
    r = subprocess.run(
        [*xmlnest, "--arch", "intel", "--check", "-q", *jobs, *map(str, paths)],
        capture_output=True,
        text=True,
        env=env,
    )
    named = {str(p): p for p in paths}
    bad = set()
    for ln in r.stderr.splitlines():
        m = LOCATED.match(ln)
        if m and m["path"] in named and not NOT_AN_ERROR.match(m["rest"]):
            bad.add(named[m["path"]])
    shutil.rmtree(folder)
    return [data for p, data in zip(paths, bases, strict=True) if p not in bad]


def fill(folder: Path, bases: list[bytes], count: int) -> None:
    """``count`` files cycling through ``bases``, each with its own <name>."""
    folder.mkdir(parents=True)
    for i in range(count):
        data, suffix = bases[i % len(bases)], b"-%d</name>" % i
        m = NAME.search(data)
        if m:
            data = data[: m.end(1)] + suffix + data[m.end() :]
        (folder / f"d{i:05d}.xml").write_bytes(data)


# --- the benchmark --------------------------------------------------------------------


def find_schema(arg: str | None) -> Path:
    places = [Path(arg)] if arg else []
    if os.environ.get("XMLNEST_SCHEMA_DIR"):
        places.append(Path(os.environ["XMLNEST_SCHEMA_DIR"]))
    for folder in [*places, *SCHEMA_PLACES]:
        if (folder / "domain.rng").is_file():
            return folder / "domain.rng"
    sys.exit("benchmarks: libvirt's domain.rng not found (install libvirt0 or pass --schema-dir)")


def find_xmlnest(arg: str | None) -> list[str]:
    if arg:
        return shlex.split(arg)
    exe = shutil.which("xmlnest")
    return [exe] if exe else [sys.executable, "-m", "xmlnest"]


def ensure_virt_xml() -> str | None:
    exe = shutil.which("virt-xml")
    if exe:
        return exe
    print("benchmarks: virt-xml missing; apt-get install virtinst ...", file=sys.stderr)
    apt = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "virtinst"]):
        if subprocess.run(cmd, env=apt, stdout=subprocess.DEVNULL).returncode != 0:
            return None
    return shutil.which("virt-xml")


def has_jobs(xmlnest: list[str], env: dict[str, str]) -> bool:
    r = subprocess.run([*xmlnest, "--help"], capture_output=True, text=True, env=env)
    return "--jobs" in r.stdout


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.schema = find_schema(args.schema_dir)
        self.xmlnest = find_xmlnest(args.xmlnest)
        self.env = {**os.environ, "XMLNEST_SCHEMA_DIR": str(self.schema.parent)}
        if not args.no_bytecode_cache:
            # An installed package has .pyc files; an editable checkout under
            # PYTHONDONTWRITEBYTECODE=1 would recompile every module on every start.
            self.env.pop("PYTHONDONTWRITEBYTECODE", None)
            self.env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        self.rows: list[Row] = []
        self.changed = 0  # files -i changes (changed_by_i)
        self.notes: list[str] = []
        self.virt_xml = ensure_virt_xml() if args.with_virt_xml else None
        if args.with_virt_xml and not self.virt_xml:
            self.notes.append("virt-xml could not be installed; its rows are skipped")
        self.jobs = has_jobs(self.xmlnest, self.env)
        self.one_job = ["--jobs", "1"] if self.jobs else []
        if not self.jobs:
            self.notes.append("`xmlnest --help` lists no --jobs; the --jobs rows are skipped")

    def say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
        verdict = {True: "PASS", False: "MISS", None: "-"}[row.ok]
        self.say(f"  {row.what}: {row.value} vs {row.baseline}: {ratio} ({row.target}) {verdict}")

    # pipe latency ---------------------------------------------------------------------

    def pipe(self) -> None:
        doc = self.work / "pipe.xml"
        doc.write_bytes(synth(1))
        self.say(f"pipe latency: one {doc.stat().st_size} B domain, {self.args.runs} runs each")
        cmds: dict[str, tuple[list[str], Path | None]] = {
            "xmlnest": ([*self.xmlnest, "--arch", "intel", str(doc)], None),
            "floor": ([sys.executable, "-c", FLOOR_ONE, str(self.schema), str(doc)], None),
            "click floor": (
                [sys.executable, "-c", FLOOR_ONE_CLICK, str(self.schema), str(doc)],
                None,
            ),
        }
        if self.virt_xml:
            cmds["virt-xml"] = (
                [
                    self.virt_xml,
                    "--connect",
                    "test:///default",
                    "--edit",
                    "--cpu",
                    "host-passthrough",
                ],
                doc,
            )
        runs = interleaved(cmds, self.args.runs, self.env)
        for name, rs in runs.items():
            bad = [r.rc for r in rs if r.rc != 0]
            if bad:
                self.notes.append(f"pipe: {name} exited {sorted(set(bad))}")
        x = median_wall(runs["xmlnest"])
        floor = median_wall(runs["click floor"])
        self.add(
            Row(
                "pipe latency, 1 file (median)",
                fmt_s(x),
                f"click floor {fmt_s(floor)}",
                x / floor,
                "≤ 1.15",
                x / floor <= 1.15,
            )
        )
        lxml_only = median_wall(runs["floor"])
        self.add(
            was(
                "pipe latency, 1 file (median), lxml-only floor",
                fmt_s(x),
                f"floor {fmt_s(lxml_only)}",
                x / lxml_only,
                1.25,
                below=False,
            )
        )
        if "virt-xml" in runs:
            v = median_wall(runs["virt-xml"])
            self.add(
                Row(
                    "pipe latency vs virt-xml (median)",
                    fmt_s(x),
                    f"virt-xml {fmt_s(v)}",
                    x / v,
                    "≤ 0.40",
                    x / v <= 0.40,
                )
            )

    # bulk -----------------------------------------------------------------------------

    def inputs(self) -> tuple[Path, Path, str]:
        bases = corpus_bases()
        origin = f"{len(bases)} corpus x86 domains"
        if bases:
            bases = accepted(self.xmlnest, bases, self.work, self.env, self.one_job)
            origin = f"{len(bases)} x86 domains from {CORPUS} (type='qemu' made 'kvm')"
        if not bases:
            bases = [synth(i, cpu) for i, cpu in enumerate(CPUS)]
            origin = f"{len(bases)} synthesised ~2 KB domains"
        many = self.work / "many"
        fill(many, bases, self.args.files)
        few = self.work / "few"
        fill(few, bases, 100)
        return many, few, origin

    def fresh(self, src: Path) -> Path:
        """A copy of ``src`` to rewrite, on disk before the clock starts (os.sync), so
        that no run pays for writing back the copy itself."""
        dst = self.work / "run"
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(src, dst)
        os.sync()
        return dst

    def changed_by_i(self, many: Path) -> Path:
        """The files ``xmlnest -i`` changes in ``many`` (found by running it once on a
        copy and comparing bytes), listed one relative path a line for the durable floor."""
        r = subprocess.run(
            [*self.xmlnest, "--arch", "intel", "-i", "-q", *self.one_job, str(self.fresh(many))],
            capture_output=True,
            env=self.env,
        )
        if r.returncode != 0:
            self.notes.append(f"preflight -i: exit {r.returncode}")
        copy = self.work / "run"
        changed = sorted(
            str(p.relative_to(many))
            for p in many.rglob("*.xml")
            if p.read_bytes() != (copy / p.relative_to(many)).read_bytes()
        )
        listing = self.work / "changed.txt"
        listing.write_text("".join(f"{rel}\n" for rel in changed), encoding="utf-8")
        self.changed = len(changed)
        return listing

    def bulk(self, many: Path) -> None:
        n = self.args.files
        listing = self.changed_by_i(many)
        self.say(f"bulk: {n} files ({self.changed} changed by -i), {self.args.repeat} run(s) each")
        base = [*self.xmlnest, "--arch", "intel"]
        variants: dict[str, tuple[list[str], bool, int]] = {}
        for jobs in (1, 2):
            if self.jobs:
                j = ["--jobs", str(jobs)]
            elif jobs == 1:
                j = []
            else:
                continue
            variants[f"--check, --jobs {jobs}"] = ([*base, "--check", *j], False, 1)
            variants[f"-i, --jobs {jobs}"] = ([*base, "-i", *j], True, 0)
        floor_cmd = [sys.executable, "-c", FLOOR_MANY, str(self.schema)]
        durable_cmd = [sys.executable, "-c", FLOOR_DURABLE, str(self.schema)]
        results: dict[str, list[Run]] = {name: [] for name in [*variants, "floor", "durable"]}
        measure([*floor_cmd, str(many)], env=self.env)  # warm the page and .pyc caches
        for _ in range(self.args.repeat):
            results["floor"].append(measure([*floor_cmd, str(many)], env=self.env))
            copy = self.fresh(many)
            results["durable"].append(
                measure([*durable_cmd, str(copy), str(listing)], env=self.env)
            )
            for name, (cmd, writes, want) in variants.items():
                folder = self.fresh(many) if writes else many
                r = measure([*cmd, str(folder)], env=self.env)
                if r.rc != want:
                    self.notes.append(f"bulk {name}: exit {r.rc}, expected {want}")
                results[name].append(r)
        for name, rs in results.items():
            self.say(f"  {name}: " + ", ".join(fmt_s(r.wall) for r in rs))
        if any(r.rc != 0 for r in results["durable"]):
            self.notes.append("bulk: the durable floor failed")
        floors = {
            name: (median_wall(results[name]), statistics.median(r.cpu for r in results[name]))
            for name in ("floor", "durable")
        }

        def against(name: str, floor_name: str) -> tuple[str, str, float]:
            x = median_wall(results[name])
            cpu = statistics.median(r.cpu for r in results[name])
            floor, floor_cpu = floors[floor_name]
            label = "floor" if floor_name == "floor" else "durable floor"
            return (
                f"{fmt_rate(x, n)}, cpu {cpu:.1f} s",
                f"{label} {fmt_rate(floor, n)}, cpu {floor_cpu:.1f} s",
                x / floor,
            )

        for name in variants:
            jobs2 = name.endswith("--jobs 2")
            if name.startswith("-i"):
                value, baseline, ratio = against(name, "durable")
                target, ok = ("< 1.00", ratio < 1.0) if jobs2 else ("≤ 1.30", ratio <= 1.3)
                self.add(Row(f"bulk {n} files, {name}", value, baseline, ratio, target, ok))
                value, baseline, ratio = against(name, "floor")
                self.add(
                    was(
                        f"bulk {n} files, {name}, plain floor",
                        value,
                        baseline,
                        ratio,
                        1.0 if jobs2 else 2.0,
                        below=jobs2,
                    )
                )
            else:
                value, baseline, ratio = against(name, "floor")
                target, ok = ("< 1.00", ratio < 1.0) if jobs2 else ("≤ 1.50", ratio <= 1.5)
                self.add(Row(f"bulk {n} files, {name}", value, baseline, ratio, target, ok))
        if not self.jobs:
            self.add(Row("bulk, --jobs 2", "—", "—", None, "< 1.00", None, "no --jobs"))
        for batch, how in ((64, "in batches of 64, as -i does"), (1, "one at a time")):
            per = atomic_write_cost(self.work / f"disk{batch}", batch)
            self.add(
                Row(
                    f"disk: durable replace of a 2 KB file, {how}",
                    f"{per * 1000:.2f} ms",
                    "floor writes nothing",
                    None,
                    "info",
                    None,
                )
            )
        if self.virt_xml:
            self.bulk_virt_xml(many, results["-i, --jobs 1"])

    def bulk_virt_xml(self, many: Path, xmlnest_runs: list[Run]) -> None:
        n, sample = self.args.files, 20
        files = sorted(many.glob("*.xml"))[:sample]
        cmd = [
            self.virt_xml or "virt-xml",
            "--connect",
            "test:///default",
            "--edit",
            "--cpu",
            "host-passthrough",
        ]
        runs = [measure(cmd, stdin=f, env=self.env) for f in files]
        t = sum(r.wall for r in runs)
        failed = sum(r.rc != 0 for r in runs)
        if failed:
            self.notes.append(f"virt-xml failed on {failed} of {len(files)} sampled files")
        est = t / len(files) * n
        x = median_wall(xmlnest_runs)
        self.add(
            Row(
                f"bulk {n} files, -i vs one virt-xml per file",
                fmt_rate(x, n),
                f"virt-xml ≈ {fmt_s(est)} ({sample} timed, extrapolated)",
                x / est,
                "info",
                None,
            )
        )

    # memory ---------------------------------------------------------------------------

    def memory(self, many: Path, few: Path) -> None:
        self.say("memory: peak RSS, --check")
        n = self.args.files
        variants = {"one job": self.one_job}
        if self.jobs:
            variants["--jobs 2, largest process"] = ["--jobs", "2"]
        for label, jobs in variants.items():
            cmd = [*self.xmlnest, "--arch", "intel", "--check", *jobs]
            big, small = (
                max(measure([*cmd, str(d)], env=self.env).maxrss_kib for _ in range(2))
                for d in (many, few)
            )
            self.add(
                Row(
                    f"peak RSS, {n} vs 100 files (--check, {label})",
                    f"{big / 1024:.1f} MiB",
                    f"100 files {small / 1024:.1f} MiB",
                    big / small,
                    "≤ 1.20",
                    big / small <= 1.2,
                )
            )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1,000 files, fewer runs (~1 minute)")
    ap.add_argument(
        "--with-virt-xml",
        action="store_true",
        help="also compare with virt-xml (apt-get installs virtinst if missing)",
    )
    ap.add_argument("--files", type=int, help="bulk file count (default 10000; --quick 1000)")
    ap.add_argument("--runs", type=int, help="pipe runs per command (default 31; --quick 15)")
    ap.add_argument("--repeat", type=int, help="bulk runs per row (default 3; --quick 3)")
    ap.add_argument("--schema-dir", help="folder holding libvirt's domain.rng")
    ap.add_argument("--xmlnest", help="command to run (default: xmlnest on PATH)")
    ap.add_argument("--workdir", help="build inputs here (default: a temp folder, removed)")
    ap.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="keep the environment's bytecode settings (default: a .pyc cache in the work folder)",
    )
    args = ap.parse_args(argv)
    args.files = args.files or (1000 if args.quick else 10000)
    args.runs = args.runs or (15 if args.quick else 31)
    args.repeat = args.repeat or 3
    load_start = loadavg()
    with tempfile.TemporaryDirectory(prefix="xmlnest-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        bench = Bench(args, work)
        t0 = time.perf_counter()
        bench.pipe()
        many, few, origin = bench.inputs()
        bench.bulk(many)
        bench.memory(many, few)
        elapsed = time.perf_counter() - t0
        print(f"## xmlnest benchmarks ({'quick' if args.quick else 'full'}, {elapsed:.0f} s)\n")
        print(machine(bench.xmlnest, bench.schema, bench.env, load_start))
        print(
            f"- inputs: {origin}; -i changes {bench.changed:,} of the {args.files:,} files; "
            f"work folder under {Path(tmp).parent}\n"
        )
    print(table(bench.rows))
    if bench.notes:
        print()
        for note in bench.notes:
            print(f"- note: {note}")
    return 1 if any(r.ok is False for r in bench.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
