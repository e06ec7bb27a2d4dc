"""The Ansible collection's cost (issue 23), not a timed test.

1. A fleet of 20 hosts (each ``ansible_connection: local`` with its own test-driver node
   file of 25 domains), ``forks: 5``: ``xmlnest.libvirt.nested`` in check mode against the
   same inventory running ``ansible.builtin.ping`` (the floor of running any module per
   host). Target: at most 2.0x.
2. Peak memory of one module run (the module's own process, ``ru_maxrss`` of the child
   ansible-playbook forks) over 500 domains against 50. Target: at most 1.2x.

Run: ``python benchmarks/ansible.py`` from the repo root, in the venv with ansible-core.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.test_ansible import FLEET_HOSTS, ansible_env, fleet_node, tool  # noqa: E402
from tests.test_connection import domain, node_file, uuid_of  # noqa: E402

PING = "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n"
NESTED = (
    "- hosts: all\n  gather_facts: false\n  tasks:\n    - xmlnest.libvirt.nested:\n"
    '        uri: "{{ libvirt_uri }}"\n        all: true\n'
)


def inventory(tmp: Path) -> Path:
    lines = ["all:", "  hosts:"]
    for i in range(FLEET_HOSTS):
        folder = tmp / f"host{i:02d}"
        folder.mkdir()
        lines += [f"    host{i:02d}:", "      ansible_connection: local",
                  f"      ansible_python_interpreter: {sys.executable}",
                  f"      libvirt_uri: {node_file(folder, fleet_node(i))}"]  # fmt: skip
    inv = tmp / "inventory.yml"
    inv.write_text("\n".join(lines) + "\n")
    return inv


def timed(tmp: Path, book: str, *args: str) -> float:
    path = tmp / "book.yml"
    path.write_text(book)
    started = time.perf_counter()
    r = subprocess.run([tool("ansible-playbook"), str(path), *args], capture_output=True,
                       text=True, env=ansible_env(tmp), check=False)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    return time.perf_counter() - started


def peak_kib(tmp: Path, domains: int) -> int:
    """ru_maxrss of the largest child of one module run over ``domains`` domains."""
    cpu = "  <cpu mode='custom' match='exact'>\n    <model>EPYC</model>\n  </cpu>\n"
    body = "".join(domain(f"vm{k:04d}", uuid_of(k + 1), cpu=cpu) for k in range(domains))
    folder = tmp / f"n{domains}"
    folder.mkdir()
    (folder / "node.xml").write_text(f"<node>\n{body}</node>\n")
    book = folder / "book.yml"
    book.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n"
        f"    - xmlnest.libvirt.nested:\n        uri: test://{folder}/node.xml\n"
        "        all: true\n        arch: amd\n"
    )
    code = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
        "capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    argv = [sys.executable, "-c", code, tool("ansible-playbook"), str(book), "--check"]
    r = subprocess.run(argv, capture_output=True, text=True, env=ansible_env(tmp), check=True)
    return int(r.stdout.strip())


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        inv = ["-i", str(inventory(tmp)), "-f", "5"]
        timed(tmp, PING, *inv)  # warm the caches
        ping = min(timed(tmp, PING, *inv) for _ in range(3))
        nested = min(timed(tmp, NESTED, *inv, "--check") for _ in range(3))
        print(f"20 hosts x 25 domains, forks 5: ping {ping:.2f} s, nested --check {nested:.2f} s, "
              f"ratio {nested / ping:.2f}x (target <= 2.0x)")  # fmt: skip
        small, large = peak_kib(tmp, 50), peak_kib(tmp, 500)
        print(f"one module run: peak RSS {small} KiB over 50 domains, {large} KiB over 500, "
              f"ratio {large / small:.2f}x (target <= 1.2x)")  # fmt: skip
    assert resource


if __name__ == "__main__":
    main()
