#!/usr/bin/env python3
"""Benchmark xmlnest's libvirt mode against its baselines, side by side in one run.

    python benchmarks/libvirt.py [--runs N] [--domains N]

Rows (libvirt's test driver, a node file built here; both backends):
- one domain by name, ``--check``, against ``virt-xml --connect URI NAME --edit --cpu
  host-passthrough --print-diff`` (target: at most half its time), and against the floor of
  the stack it stands on (``python -c`` that imports click, libvirt and lxml, opens the
  connection, reads the stored XML and the host's capabilities, parses, compiles
  ``domain.rng``, validates and serialises: info, with the floor's own ratio to virt-xml);
- ``--status --all-domains`` over N domains (default 500) against the same number of file
  ``--check``s plus libvirt's own ``XMLDesc`` calls for every domain (stored and live)
  through one libvirt-python connection (target: at most twice that);
- ``--check --all-domains`` over the same N domains, against the same baseline (info:
  the by-name path reads each domain ahead, as ``--status`` does);
- its peak RSS with N domains against 50 (target: at most 1.2: memory does not grow). The
  RSS is xmlnest's own (``RUSAGE_SELF`` at exit: a virsh child is not counted). With
  libvirt-python the test driver itself lives in xmlnest's process and holds every domain
  of the node file, so the driver's own growth (the ``XMLDesc`` floor's, 50 -> N domains)
  is taken off; the raw figure is kept as an info row.
Prints a Markdown table; exit 1 when a row with a target misses it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NS = "http://libvirt.org/schemas/domain/test/1.0"
DOMAIN = """<domain type='kvm' xmlns:test='{ns}'>
  <name>{name}</name>
  <uuid>00000000-0000-4000-8000-{i:012x}</uuid>
  <memory unit='KiB'>1048576</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <cpu mode='custom' match='exact' check='partial'>
    <model fallback='allow'>EPYC</model>
    <feature policy='disable' name='svm'/>
  </cpu>
  <clock offset='utc'/>
  <devices>
    <disk type='file' device='disk'>
      <source file='/var/lib/libvirt/images/{name}.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
  </devices>{state}
</domain>
"""

XMLDESC = """\
import sys, libvirt
libvirt.registerErrorHandler(lambda *a: None, None)
conn = libvirt.open(sys.argv[1])
for name in sorted(conn.listDefinedDomains() + [d.name() for d in conn.listAllDomains(1)]):
    dom = conn.lookupByName(name)
    dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
    if dom.isActive():
        dom.XMLDesc(0)
conn.close()
"""

# One domain by name, the least a validating tool on this stack does: imports (click,
# libvirt, lxml), the connection, the stored XML, the host's capabilities (its vendor),
# parse, compile domain.rng, validate, serialise.
BY_NAME_FLOOR = """\
import sys, click, libvirt
from lxml import etree
libvirt.registerErrorHandler(lambda *a: None, None)
conn = libvirt.open(sys.argv[2])
dom = conn.lookupByName(sys.argv[3])
xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
conn.getCapabilities()
parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
root = etree.fromstring(xml.encode(), parser)
schema = etree.RelaxNG(etree.parse(sys.argv[1]))
schema.validate(root.getroottree())
sys.stdout.buffer.write(etree.tostring(root.getroottree(), encoding='utf-8'))
conn.close()
"""

# Run a command's Python code, then write its own peak RSS (KiB, RUSAGE_SELF: children
# such as a virsh process not counted) to the file named by $XMLNEST_BENCH_RSS.
SELF_RSS = """\
import os, resource, runpy, sys
out = os.environ['XMLNEST_BENCH_RSS']
try:
    if sys.argv[1] == '-m':
        sys.argv = [sys.argv[2], *sys.argv[3:]]
        runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)
    else:
        code = sys.argv[2]
        sys.argv = ['-c', *sys.argv[3:]]
        exec(compile(code, '<bench>', 'exec'), {'__name__': '__main__'})
finally:
    with open(out, 'w') as fh:
        fh.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
"""


def domains(folder: Path, count: int) -> tuple[str, Path]:
    """A node file with ``count`` domains (every third shut off), and the same domains as
    files in a folder: ``(uri, folder)``."""
    files = folder / "files"
    files.mkdir(parents=True)
    body = []
    for i in range(count):
        name = f"vm{i:04d}"
        state = "\n  <test:runstate>5</test:runstate>" if i % 3 == 0 else ""
        text = DOMAIN.format(ns=NS, name=name, i=i + 1, state=state)
        body.append(text)
        (files / f"{name}.xml").write_text(
            text.replace(state, "").replace(f" xmlns:test='{NS}'", ""), encoding="utf-8"
        )
    node = folder / "node.xml"
    node.write_text("<node>\n" + "".join(body) + "</node>\n", encoding="utf-8")
    return f"test://{node}", files


def timed(cmd: list[str], env: dict[str, str], ok: tuple[int, ...]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one run of ``cmd`` (stderr to a file: a pipe
    would fill up and stall a run that says a lot)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code not in ok:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} exited {code}:\n{err.read().decode()}")
    return seconds, usage.ru_maxrss


def self_rss(cmd: list[str], env: dict[str, str], ok: tuple[int, ...]) -> int:
    """Peak RSS (KiB) of the Python process ``cmd`` runs (``[python, -m MOD ...]`` or
    ``[python, -c CODE ...]``) itself, without its children."""
    with tempfile.NamedTemporaryFile(prefix="xmlnest-rss-") as f:
        timed([cmd[0], "-c", SELF_RSS, *cmd[1:]], {**env, "XMLNEST_BENCH_RSS": f.name}, ok)
        return int(Path(f.name).read_text() or 0)


def median(
    cmds: dict[str, list[str]],
    env: dict[str, dict[str, str]],
    ok: dict[str, tuple[int, ...]],
    runs: int,
) -> dict[str, float]:
    """Median wall time per command, the commands interleaved in a rotating order."""
    seen: dict[str, list[float]] = {k: [] for k in cmds}
    keys = list(cmds)
    for k in keys:  # warm-up
        timed(cmds[k], env[k], ok[k])
    for r in range(runs):
        for k in keys[r % len(keys) :] + keys[: r % len(keys)]:
            seen[k].append(timed(cmds[k], env[k], ok[k])[0])
    return {k: statistics.median(v) for k, v in seen.items()}


def find_schema() -> str:
    """libvirt's domain.rng for the floor ($XMLNEST_SCHEMA_DIR, else the install places)."""
    places = [os.environ.get("XMLNEST_SCHEMA_DIR", ""), "/usr/share/libvirt/schemas"]
    places.append("/usr/local/share/libvirt/schemas")
    for folder in places:
        if folder and os.path.isfile(os.path.join(folder, "domain.rng")):
            return os.path.join(folder, "domain.rng")
    raise SystemExit("libvirt's domain.rng not found: apt-get install libvirt-clients")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15, help="runs per command (default 15)")
    ap.add_argument("--domains", type=int, default=500, help="domains for --status (500)")
    args = ap.parse_args()
    xmlnest = [sys.executable, "-m", "xmlnest"]
    virt_xml = shutil.which("virt-xml")
    # As benchmarks/run.py does: bytecode cached in the work folder for every command, so
    # an editable checkout under PYTHONDONTWRITEBYTECODE=1 does not recompile each start.
    cache = tempfile.mkdtemp(prefix="xmlnest-lvbench-pyc-")
    plain_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    plain_env["PYTHONPYCACHEPREFIX"] = cache
    base_env = {**plain_env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    rows: list[tuple[str, str, str, float, str, bool | None]] = []
    schema = find_schema()
    floor_s = 0.0
    with tempfile.TemporaryDirectory(prefix="xmlnest-lvbench-") as tmp:
        one_uri, _ = domains(Path(tmp) / "one", 1)
        big_uri, big_files = domains(Path(tmp) / "big", args.domains)
        small_uri, _ = domains(Path(tmp) / "small", 50)
        for backend in ("python", "virsh"):
            env = {**base_env, "XMLNEST_LIBVIRT_BACKEND": backend}
            cmds = {"xmlnest": [*xmlnest, "-c", one_uri, "--domain", "vm0000", "--check"]}
            envs = {"xmlnest": env}
            oks: dict[str, tuple[int, ...]] = {"xmlnest": (1,)}
            if virt_xml:
                cmds["virt-xml"] = [
                    virt_xml,
                    "--connect",
                    one_uri,
                    "vm0000",
                    "--edit",
                    "--cpu",
                    "host-passthrough",
                    "--print-diff",
                ]
                envs["virt-xml"] = dict(plain_env)
                oks["virt-xml"] = (0,)
            if backend == "python":  # the floor is libvirt-python's whatever the backend
                cmds["floor"] = [sys.executable, "-c", BY_NAME_FLOOR, schema, one_uri, "vm0000"]
                envs["floor"] = dict(plain_env)
                oks["floor"] = (0,)
            got = median(cmds, envs, oks, args.runs)
            floor_s = got.get("floor", floor_s)
            if virt_xml:
                ratio = got["xmlnest"] / got["virt-xml"]
                rows.append(
                    (
                        f"one domain by name, --check ({backend})",
                        f"{got['xmlnest'] * 1000:.0f} ms",
                        f"virt-xml {got['virt-xml'] * 1000:.0f} ms",
                        ratio,
                        "≤ 0.50",
                        ratio <= 0.5,
                    )
                )
            rows.append(
                (
                    f"one domain by name, --check ({backend}), stack floor",
                    f"{got['xmlnest'] * 1000:.0f} ms",
                    f"floor {floor_s * 1000:.0f} ms",
                    got["xmlnest"] / floor_s,
                    "info",
                    None,
                )
            )
            if virt_xml and backend == "python":
                rows.append(
                    (
                        "the stack floor itself vs virt-xml",
                        f"floor {floor_s * 1000:.0f} ms",
                        f"virt-xml {got['virt-xml'] * 1000:.0f} ms",
                        floor_s / got["virt-xml"],
                        "info",
                        None,
                    )
                )
            status = [*xmlnest, "-c", big_uri, "--status", "--all-domains"]
            check = [*xmlnest, "--check", "--jobs", "1", str(big_files)]
            desc = [sys.executable, "-c", XMLDESC, big_uri]
            st = statistics.median(timed(status, env, (1,))[0] for _ in range(3))
            fc = statistics.median(timed(check, env, (1,))[0] for _ in range(3))
            xd = statistics.median(timed(desc, env, (0,))[0] for _ in range(3))
            ratio = st / (fc + xd)
            rows.append(
                (
                    f"--status --all-domains, {args.domains} domains ({backend})",
                    f"{st:.2f} s",
                    f"file --check {fc:.2f} s + XMLDesc {xd:.2f} s",
                    ratio,
                    "≤ 2.00",
                    ratio <= 2.0,
                )
            )
            by_name = [*xmlnest, "-c", big_uri, "--all-domains", "--check", "-q"]
            bn = statistics.median(timed(by_name, env, (1,))[0] for _ in range(3))
            rows.append(
                (
                    f"--check --all-domains, {args.domains} domains ({backend})",
                    f"{bn:.2f} s",
                    f"file --check {fc:.2f} s + XMLDesc {xd:.2f} s",
                    bn / (fc + xd),
                    "info",
                    None,
                )
            )
            small = [*xmlnest, "-c", small_uri, "--status", "--all-domains"]
            rss_big = max(self_rss(status, env, (1,)) for _ in range(2))
            rss_small = max(self_rss(small, env, (1,)) for _ in range(2))
            grown = 0  # what the in-process test driver itself grows by, 50 -> N domains
            if backend == "python":
                small_desc = [sys.executable, "-c", XMLDESC, small_uri]
                grown = max(self_rss(desc, env, (0,)) for _ in range(2)) - max(
                    self_rss(small_desc, env, (0,)) for _ in range(2)
                )
                rows.append(
                    (
                        f"peak RSS, --status {args.domains} vs 50 domains ({backend}), raw",
                        f"{rss_big / 1024:.1f} MiB",
                        f"50 domains {rss_small / 1024:.1f} MiB",
                        rss_big / rss_small,
                        "info",
                        None,
                    )
                )
            ratio = (rss_big - grown) / rss_small
            shown = f"{rss_big / 1024:.1f} MiB"
            if grown:
                shown += f" − driver's own {grown / 1024:.1f} MiB"
            rows.append(
                (
                    f"peak RSS, --status {args.domains} vs 50 domains ({backend})",
                    shown,
                    f"50 domains {rss_small / 1024:.1f} MiB",
                    ratio,
                    "≤ 1.20",
                    ratio <= 1.2,
                )
            )
    shutil.rmtree(cache, ignore_errors=True)
    load = os.getloadavg()
    print(
        f"- load average at the end: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}; "
        f"nproc {os.cpu_count()}; virt-xml: {virt_xml or 'not installed'}\n"
    )
    print("| measurement | xmlnest | baseline | ratio | target | result |")
    print("|---|---|---|---|---|---|")
    missed = False
    for name, ours, base, ratio, target, passed in rows:
        result = "—" if passed is None else "PASS" if passed else "MISS"
        missed |= passed is False
        print(f"| {name} | {ours} | {base} | {ratio:.2f} | {target} | {result} |")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
