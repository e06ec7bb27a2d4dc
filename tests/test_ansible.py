"""The Ansible collection xmlnest.libvirt (ansible_collections/xmlnest/libvirt): sanity,
docs, argument handling and result shaping, playbooks by ansible-playbook on localhost
against libvirt's test driver (one host, and a fleet of 20), and the collection built and
installed from its tarball. The real system daemon: tests/test_ansible_system.py.

The test driver keeps its state per connection, and each module run opens its own: a
define made by one run is gone for the next. So persistence across runs is shown on
the system daemon (tests/test_ansible_system.py); on the test driver a second run reads a node file made of what the first
run defined (its diff's ``after``), byte for byte.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import xmlnest
from tests.conftest import REPO, need, real_required
from tests.test_connection import FLEET, TEST_NS, Domains, node_file, uuid_of

COLLECTION = REPO / "ansible_collections" / "xmlnest" / "libvirt"
PLUGINS = (("module", "xmlnest.libvirt.nested"), ("module", "xmlnest.libvirt.host_facts"),
           ("filter", "xmlnest.libvirt.nested"))  # fmt: skip


def tool(name: str) -> str:
    """An ansible-core command of this interpreter's environment."""
    found = Path(sys.executable).parent / name
    if not found.exists():
        need(f"ansible-core's {name}", "pip install ansible-core (.ci/run installs it)")
    return str(found)


def ansible_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(REPO),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_HOME=str(tmp / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_DEPRECATION_WARNINGS="false",
        ANSIBLE_RETRY_FILES_ENABLED="false",
        PYTHONWARNINGS="ignore",
    )
    env.update(extra)
    return env


def playbook(
    tmp: Path, text: str, *args: str, json_out: bool = False, **env: str
) -> subprocess.CompletedProcess[str]:
    """``ansible-playbook`` on the implicit localhost (or ``-i``/``-f`` in ``args``);
    ``json_out``: ``-v`` with one-line JSON results, for :func:`task_results`."""
    book = tmp / f"play-{len(list(tmp.glob('play-*.yml')))}.yml"
    book.write_text(text)
    extra = dict(env)
    verbose = []
    if json_out:
        extra["ANSIBLE_CALLBACK_FORMAT_PRETTY"] = "false"
        extra["ANSIBLE_CALLBACK_RESULT_FORMAT"] = "json"
        verbose = ["-v"]
    return subprocess.run(
        [tool("ansible-playbook"), str(book), *verbose, *args],
        capture_output=True,
        text=True,
        env=ansible_env(tmp, **extra),
        cwd=tmp,
        timeout=600,
        check=False,
    )


RESULT_LINE = re.compile(r"^(?:ok|changed|fatal|failed): \[([^\]]+)\](?:: FAILED!)? => (\{.*\})$")


def task_results(run: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """Each host's result of each task, in the order printed (``-v``'s one-line JSON)."""
    out: list[dict[str, Any]] = []
    for line in run.stdout.splitlines():
        m = RESULT_LINE.match(line)
        if m:
            out.append({**json.loads(m[2]), "_host": m[1]})
    assert out, run.stdout + run.stderr
    return out


def stats(run: subprocess.CompletedProcess[str]) -> dict[str, dict[str, int]]:
    """PLAY RECAP: each host's counters."""
    recap = run.stdout[run.stdout.index("PLAY RECAP") :]
    result: dict[str, dict[str, int]] = {}
    for line in recap.splitlines()[1:]:
        if ":" not in line:
            continue
        host, counters = line.split(":", 1)
        result[host.strip()] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counters)}
    return result


def nested_task(uri: str, **params: Any) -> str:
    """A play on localhost running the nested module once, its result registered."""
    args = json.dumps({"uri": uri, **params})
    return (
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n"
        f"    - name: nested\n      xmlnest.libvirt.nested: {args}\n      register: r\n"
        "      ignore_errors: true\n"
        "    - name: show\n      ansible.builtin.debug:\n        var: r\n"
    )


def registered(run: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """The nested task's registered result on each host (the debug task's ``r``), diff
    and failure included."""
    return [res["r"] for res in task_results(run) if "r" in res]


# A node with several arches, running and shut-off domains.
NODE: Domains = {
    **{k: v for k, v in FLEET.items() if k in ("amd-off", "intel-run", "power9-run", "ibmz-off")},
    "arm-run": FLEET["arm-run"],
}
CONVERTIBLE = ["amd-off", "intel-run", "ibmz-off", "power9-run"]


def node_from(tmp: Path, diffs: list[dict[str, str]], name: str = "node2.xml") -> str:
    """A test-driver node file holding what a run defined (its diff's ``after``)."""
    body = "".join(d["after"] for d in diffs)
    path = tmp / name
    path.write_text(f"<node>\n{body}</node>\n", encoding="utf-8")
    return f"test://{path}"


# ------------------------------------------------------------------ docs and sanity


@pytest.mark.parametrize(("kind", "name"), PLUGINS)
def test_ansible_doc_renders_each_plugin(tmp_path: Path, kind: str, name: str) -> None:
    r = subprocess.run(
        [tool("ansible-doc"), "-t", kind, name],
        capture_output=True, text=True, env=ansible_env(tmp_path), check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert name in r.stdout and "EXAMPLES" in r.stdout and "ERROR" not in r.stderr
    if kind == "module":
        assert "RETURN VALUES" in r.stdout


GET_PIP_STAND_IN = """\
# ansible-test's pip bootstrap, without downloading get-pip.py (this machine reaches only
# the package index): pip from ensurepip, then the packages asked for, from the index.
import ensurepip, subprocess, sys
ensurepip.bootstrap()
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", *{cert!r}, *args])
"""


def sanity_home() -> Path:
    """A HOME for ansible-test (its venvs are cached there between runs) with the user's
    pip configuration and a pip bootstrap that needs only the package index."""
    home = REPO / ".cache" / "ansible-test-home"
    cache = home / ".ansible" / "test" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    pip_conf = Path.home() / ".config" / "pip"
    if pip_conf.is_dir():
        shutil.copytree(pip_conf, home / ".config" / "pip", dirs_exist_ok=True)
    cert = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    text = GET_PIP_STAND_IN.format(cert=["--cert", cert] if cert else [])
    for version in ("24_2", "24_3", "25_0", "25_1"):
        (cache / f"get_pip_{version}.py").write_text(text)
    return home


def test_ansible_test_sanity(tmp_path: Path) -> None:
    """``ansible-test sanity --local`` on a copy at a path ending ansible_collections/
    xmlnest/libvirt (outside this repo's git, which ansible-test would otherwise read)."""
    tool("ansible-test")
    root = tmp_path / "ansible_collections" / "xmlnest" / "libvirt"
    shutil.copytree(COLLECTION, root, ignore=shutil.ignore_patterns("tests/output", "*.tar.gz"))
    r = subprocess.run(
        [tool("ansible-test"), "sanity", "--local", "--python",
         f"{sys.version_info.major}.{sys.version_info.minor}", "--color", "no"],
        capture_output=True, text=True, cwd=root, check=False, timeout=1800,
        env={**ansible_env(tmp_path), "HOME": str(sanity_home())},
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-6000:]
    assert 'Running sanity test "validate-modules"' in r.stdout + r.stderr


# ------------------------------------------------------ argument handling, result shaping


def plugin(kind: str, name: str) -> ModuleType:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module(f"ansible_collections.xmlnest.libvirt.plugins.{kind}.{name}")


def test_task_parameters_become_the_api_arguments() -> None:
    nested = plugin("modules", "nested")
    base: dict[str, Any] = {"arch": "auto", "model": None, "cpu": None, "level": "l1", "state": "enabled",
            "strict": False, "ignore": []}  # fmt: skip
    assert nested.api_arguments(base) == {
        "arch": "auto", "model": None, "passthrough": False, "host_model": False,
        "level": "l1", "disable": False, "strict": False, "ignore": [],
    }  # fmt: skip
    got = nested.api_arguments({**base, "cpu": "host-model", "ignore": ["XN202"]})
    assert got["host_model"] and not got["passthrough"] and got["ignore"] == ["XN202"]
    assert nested.api_arguments({**base, "cpu": "passthrough"})["passthrough"]
    assert nested.api_arguments({**base, "state": "disabled"})["disable"]
    spec = nested.ARGUMENT_SPEC
    assert spec["arch"]["choices"] == ["auto", "intel", "amd", "power9", "ibmz"]
    assert spec["name"]["type"] == "list" and spec["state"]["default"] == "enabled"


def test_results_are_shaped_as_the_json_report(tmp_path: Path) -> None:
    nested = plugin("modules", "nested")
    with xmlnest.connect(node_file(tmp_path, NODE)) as conn:
        results = list(xmlnest.convert_domains(conn, ["nope", *CONVERTIBLE, "arm-run"]))
    out = nested.shaped(results, True, True)
    entries = {d["name"]: d for d in out["domains"]}
    assert [d["name"] for d in out["domains"]][0] == "nope"  # unknown ones first
    assert entries["amd-off"]["status"] == "would change" and out["changed"] is True
    assert entries["power9-run"]["status"] == "unchanged"
    assert entries["intel-run"]["restart_required"] and out["restart_required"]
    assert not entries["amd-off"]["restart_required"]
    arm = entries["arm-run"]
    assert arm["status"] == "rejected" and arm["findings"][0]["rule"] == "XN101"
    assert set(arm["findings"][0]) == {"rule", "level", "line", "message", "hint"}
    assert arm["findings"][0]["level"] == "error"
    assert [d["before_header"] for d in out["diff"]] == [
        "amd-off (stored definition)", "intel-run (stored definition)"
    ]  # fmt: skip
    assert entries["ibmz-off"]["status"] == "unchanged"  # no <cpu>: IBM Z nests already
    by_name = {r.name: r for r in results}
    assert nested.refusal_line(by_name["nope"]).endswith(
        "domain 'nope': no such domain; check the name with virsh -c URI list --all"
    )
    assert " XN101 " in nested.refusal_line(by_name["arm-run"])
    assert nested.shaped(results, False, False).keys() == {"changed", "domains", "restart_required"}


@pytest.mark.parametrize(
    ("api", "task"),
    [("pass arch='intel' or arch='amd'", "pass arch: intel or arch: amd"),
     ("use host_model=True, or model=NAME, for a migratable CPU",
      "use cpu: host-model, or model: NAME, for a migratable CPU"),
     ("use arch='amd', or model=NAME or passthrough=True to replace the CPU",
      "use arch: amd, or model: NAME or cpu: passthrough to replace the CPU"),
     ("use level='l1'", "use level: l1"),
     ("use <domain type='kvm'> on a KVM host", "use <domain type='kvm'> on a KVM host")],
)  # fmt: skip
def test_hints_are_reworded_for_tasks(api: str, task: str) -> None:
    common = plugin("module_utils", "xmlnest_common")
    assert common.task_words(api) == task


def test_host_facts_shape_and_the_kernel_hook() -> None:
    facts_module = plugin("modules", "host_facts")
    report = xmlnest.host_check(str(REPO / "tests" / "hosts" / "intel-off"))
    facts = facts_module.host_facts(report)
    assert facts["exit_code"] == 1 and facts["ready"] is False and facts["arch"] == "x86"
    assert json.loads(json.dumps(facts)) == facts  # plain data
    assert facts["kernel_fixed"] is (
        facts_module.kernel_fixed(facts) if "security" in facts else None
    )
    for states, fixed in ((["patched"], True), (["patched", "vulnerable"], False),
                          (["cannot tell"], None), ([], None)):  # fmt: skip
        security = [{"kernel": {"state": state}} for state in states]
        assert facts_module.kernel_fixed({"security": security}) is fixed


# ------------------------------------------------------------ playbooks: the test driver


def test_check_mode_diff_shows_exactly_the_cpu_lines(tmp_path: Path) -> None:
    uri = node_file(tmp_path, NODE)
    r = playbook(tmp_path, nested_task(uri, name=CONVERTIBLE), "--check", "--diff")
    assert r.returncode == 0, r.stdout + r.stderr
    changed = [ln for ln in r.stdout.splitlines() if re.match(r"^[-+][^-+]", ln)]
    assert changed == [
        "-    <feature policy='disable' name='svm'/>",
        "+    <feature policy='require' name='svm'/>",
        "+    <feature policy='require' name='vmx'/>",
    ], r.stdout
    assert "--- before: amd-off (stored definition)" in r.stdout
    assert "+++ after: intel-run (to define)" in r.stdout
    assert "after: ibmz-off" not in r.stdout and "after: power9-run" not in r.stdout
    assert "changed: [localhost]" in r.stdout


def test_check_then_apply_then_a_second_run_changes_nothing(tmp_path: Path) -> None:
    uri = node_file(tmp_path, NODE)
    check = playbook(tmp_path, nested_task(uri, name=CONVERTIBLE), "--check", "--diff",
                     json_out=True)  # fmt: skip
    (c,) = registered(check)
    assert c["changed"] and {d["status"] for d in c["domains"]} == {"would change", "unchanged"}
    apply = playbook(tmp_path, nested_task(uri, name=CONVERTIBLE), "--diff", json_out=True)
    (a,) = registered(apply)
    assert a["changed"] and [d["status"] for d in a["domains"]] == [
        "changed", "changed", "unchanged", "unchanged"
    ]  # fmt: skip
    pairs = [(d["before"], d["after"]) for d in a["diff"]]
    assert pairs == [(d["before"], d["after"]) for d in c["diff"]]  # check showed what was defined
    assert a["restart_required"] is True
    assert [d["name"] for d in a["domains"] if d["restart_required"]] == ["intel-run"]
    defined = node_from(tmp_path, a["diff"])
    names = ["amd-off", "intel-run"]
    again = playbook(tmp_path, nested_task(defined, name=names), "--diff", json_out=True)
    (b,) = registered(again)
    assert b["changed"] is False and b["diff"] == []
    assert {d["status"] for d in b["domains"]} == {"unchanged"}


def test_disabled_and_back(tmp_path: Path) -> None:
    uri = node_file(tmp_path, NODE)
    names = ["amd-off", "intel-run"]
    on = registered(playbook(tmp_path, nested_task(uri, name=names), "--diff", json_out=True))[0]
    enabled = node_from(tmp_path, on["diff"], "enabled.xml")
    off_run = playbook(tmp_path, nested_task(enabled, name=names, state="disabled"), "--diff",
                       json_out=True)  # fmt: skip
    (off,) = registered(off_run)
    assert off["changed"] and all(d["status"] == "changed" for d in off["domains"])
    assert all("policy='disable'" in d["after"] for d in off["diff"])
    disabled = node_from(tmp_path, off["diff"], "disabled.xml")
    back = registered(playbook(tmp_path, nested_task(disabled, name=names), "--diff",
                                 json_out=True))[0]  # fmt: skip
    assert [d["after"] for d in back["diff"]] == [d["after"] for d in on["diff"]]


def test_unknown_and_refused_domains_fail_and_nothing_is_defined(tmp_path: Path) -> None:
    uri = node_file(tmp_path, NODE)
    r = playbook(tmp_path, nested_task(uri, name=["amd-off", "no-such-vm"]), json_out=True)
    (res,) = registered(r)
    assert res["failed"] and res["changed"] is False
    assert res["msg"] == (
        f"{uri}: domain 'no-such-vm': no such domain; check the name with virsh -c URI list --all"
    )
    assert [d["status"] for d in res["domains"]] == ["rejected", "changed"]  # checked, not defined
    arm = registered(playbook(tmp_path, nested_task(uri, name=["arm-run"]), json_out=True))[0]
    assert arm["failed"] and arm["msg"].startswith("arm-run:") and " XN101 " in arm["msg"]
    bad = registered(
        playbook(
            tmp_path,
            nested_task(uri, name=["amd-off"], state="disabled", cpu="host-model"),
            json_out=True,
        )  # fmt: skip
    )[0]
    assert (
        bad["failed"] and "--" not in bad["msg"] and "state: disabled and host_model" in bad["msg"]
    )


HOSTS = REPO / "tests" / "hosts"


def test_enabling_on_a_vulnerable_kernel_warns_and_strict_refuses(tmp_path: Path) -> None:
    """XN223, as the CLI says it: a task warning and host_kernel; strict refuses before any
    domain is read, so nothing is defined; turning nesting off, a fixed kernel, or XN223
    ignored say nothing. (The test driver's host is made up: host_root stands for it.)"""
    uri = node_file(tmp_path, NODE)
    bad = str(HOSTS / "sec-debian12-unpatched-on")
    fixed = str(HOSTS / "sec-debian12-patched-on")

    def run(**params: Any) -> dict[str, Any]:
        (res,) = registered(playbook(tmp_path, nested_task(uri, name=["amd-off"], **params),
                                     json_out=True))  # fmt: skip
        return res

    warned = run(host_root=bad)
    assert warned["changed"] and not warned.get("failed"), warned
    assert warned["host_kernel"]["rule"] == "XN223"
    assert "fixed in 6.1.177" in warned["host_kernel"]["message"]
    assert "--" not in warned["host_kernel"]["hint"]
    assert "xmlnest.libvirt.host_facts" in warned["host_kernel"]["hint"]
    (line,) = warned["warnings"]
    assert line.startswith(f"{uri}: XN223 the host's kernel 6.1.170") and "CVE-2026-53359" in line
    refused = run(host_root=bad, strict=True)
    assert refused["failed"] and refused["changed"] is False and refused["domains"] == []
    assert refused["msg"].endswith("(strict)") and " XN223 " in refused["msg"]
    for quiet in (run(host_root=fixed), run(host_root=bad, state="disabled"),
                  run(host_root=bad, ignore=["xn223"])):  # fmt: skip
        assert quiet["host_kernel"] is None and not quiet.get("warnings"), quiet
        assert not quiet.get("failed"), quiet


def test_the_filter_on_a_file(tmp_path: Path) -> None:
    src = REPO / "samples" / "amd-l1.xml"
    dest = tmp_path / "out.xml"
    live = tmp_path / "live.xml"
    live.write_bytes(src.read_bytes().replace(b"<domain ", b"<domain id='7' ", 1))
    book = (
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.copy:\n"
        f"        content: \"{{{{ lookup('file', '{src}', rstrip=false) | "
        "xmlnest.libvirt.nested(arch='amd') }}\"\n"
        f"        dest: {dest}\n"
    )
    r = playbook(tmp_path, book)
    assert r.returncode == 0, r.stdout + r.stderr
    assert dest.read_bytes() == xmlnest.transform(src.read_bytes(), arch="amd").output
    refused = playbook(tmp_path, book.replace(str(src), str(live)))
    assert refused.returncode == 2
    assert re.search(r"nested: domain XML:\d+: XN113 ", refused.stdout), refused.stdout


def test_host_facts_in_a_playbook(tmp_path: Path) -> None:
    root = REPO / "tests" / "hosts" / "intel-off"
    book = (
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n"
        f"    - xmlnest.libvirt.host_facts:\n        root: {root}\n"
        "    - ansible.builtin.debug:\n        var: ansible_facts.xmlnest_host\n"
    )
    r = playbook(tmp_path, book, "--check", json_out=True)
    assert r.returncode == 0, r.stdout + r.stderr
    (facts,) = [res["ansible_facts.xmlnest_host"] for res in task_results(r)
                if "ansible_facts.xmlnest_host" in res]  # fmt: skip
    expected = plugin("modules", "host_facts").host_facts(xmlnest.host_check(str(root)))
    assert facts == expected and facts["exit_code"] == 1 and facts["ready"] is False


def test_without_xmlnest_the_module_says_what_to_install(tmp_path: Path) -> None:
    """A managed host whose Python lacks xmlnest: a bare venv (no site packages)."""
    bare_env = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare_env)], check=True)
    bare = bare_env / "bin" / "python"
    probe = subprocess.run([str(bare), "-c", "import xmlnest"], capture_output=True, cwd=tmp_path)
    assert probe.returncode != 0
    # The implicit localhost runs modules with ansible-playbook's own Python unless told.
    book = nested_task("test:///default", all=True).replace(
        "  gather_facts: false\n",
        f"  gather_facts: false\n  vars:\n    ansible_python_interpreter: {bare}\n",
    )
    r = playbook(tmp_path, book, json_out=True)
    (res,) = registered(r)
    assert res["failed"]
    assert "Failed to import the required Python library (xmlnest)" in res["msg"]
    assert "python3 -m pip install './xmlnest[libvirt]'" in res["msg"]


# -------------------------------------------------------------- a fleet of 20 hosts


FLEET_HOSTS = 20
FLEET_DOMAINS = 25


def fleet_node(i: int) -> Domains:
    """25 domains: Intel and AMD custom CPUs, host-model, POWER9 and IBM Z; running and
    shut off; every fifth already nested."""
    out: dict[str, Any] = {}
    for k in range(FLEET_DOMAINS):
        kind = k % 5
        running = k % 2 == 0
        if kind == 0:
            args: dict[str, Any] = dict(cpu="  <cpu mode='custom' match='exact'>\n    <model>EPYC</model>\n"
                        "    <feature policy='disable' name='svm'/>\n  </cpu>\n")  # fmt: skip
        elif kind == 1:
            args = dict(
                cpu="  <cpu mode='custom' match='exact'>\n    <model>Haswell-noTSX</model>\n  </cpu>\n"
            )
        elif kind == 2:
            args = dict(arch="s390x", machine="s390-ccw-virtio")
        elif kind == 3:
            args = dict(arch="ppc64le", machine="pseries",
                        features="  <features>\n    <nested-hv state='on'/>\n  </features>\n")  # fmt: skip
        else:
            args = dict(cpu="  <cpu mode='host-passthrough'/>\n")
        out[f"h{i:02d}-vm{k:02d}"] = (uuid_of(i * 100 + k + 1), dict(args, running=running))
    return out


@pytest.fixture
def fleet_inventory(tmp_path: Path) -> Iterator[Path]:
    lines = ["all:", "  hosts:"]
    for i in range(FLEET_HOSTS):
        folder = tmp_path / f"host{i:02d}"
        folder.mkdir()
        uri = node_file(folder, fleet_node(i))
        lines += [f"    host{i:02d}:", "      ansible_connection: local",
                  f"      ansible_python_interpreter: {sys.executable}", f"      libvirt_uri: {uri}"]  # fmt: skip
    inv = tmp_path / "inventory.yml"
    inv.write_text("\n".join(lines) + "\n")
    yield inv


FLEET_PLAY = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: nesting
      xmlnest.libvirt.nested:
        uri: "{{ libvirt_uri }}"
        all: true
"""


def test_a_fleet_of_20_hosts_check_then_apply(tmp_path: Path, fleet_inventory: Path) -> None:
    inv = ["-i", str(fleet_inventory), "-f", "5"]
    check = playbook(tmp_path, FLEET_PLAY, *inv, "--check", json_out=True)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr
    apply = playbook(tmp_path, FLEET_PLAY, *inv, json_out=True)
    assert apply.returncode == 0, apply.stdout[-3000:] + apply.stderr
    for run, word in ((check, "would change"), (apply, "changed")):
        results = task_results(run)
        assert sorted(r["_host"] for r in results) == [f"host{i:02d}" for i in range(20)]
        for res in results:
            statuses = [d["status"] for d in res["domains"]]
            assert len(statuses) == FLEET_DOMAINS
            # per host: 5 AMD (svm disabled) and 5 Intel (no vmx) change; 5 IBM Z, 5 POWER9
            # (nested-hv on) and 5 host-passthrough are nested already
            assert statuses.count(word) == 10 and statuses.count("unchanged") == 15, res["_host"]
            running_changed = [d for d in res["domains"] if d["restart_required"]]
            assert {d["name"][-2:] for d in running_changed} == {"00", "06", "10", "16", "20"}
        recap = stats(run)
        assert len(recap) == FLEET_HOSTS
        assert all(s["changed"] == 1 and s["ok"] == 1 and s["failed"] == 0 for s in recap.values())
        assert sum(s["changed"] for s in recap.values()) == FLEET_HOSTS


# ------------------------------------------------------- built, installed from the tarball


def test_build_and_install_the_collection_from_its_tarball(tmp_path: Path) -> None:
    galaxy = tool("ansible-galaxy")
    built = tmp_path / "dist"
    env = ansible_env(tmp_path)
    r = subprocess.run([galaxy, "collection", "build", str(COLLECTION), "--output-path", str(built)],
                       capture_output=True, text=True, env=env, check=False)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    (tarball,) = built.glob("*.tar.gz")
    assert tarball.name == f"xmlnest-libvirt-{xmlnest.__version__}.tar.gz"
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
    assert {"plugins/modules/nested.py", "plugins/modules/host_facts.py",
            "plugins/filter/nested.py", "meta/runtime.yml", "MANIFEST.json"} <= names  # fmt: skip
    installed = tmp_path / "installed"
    r = subprocess.run([galaxy, "collection", "install", "--force", str(tarball), "-p", str(installed)],
                       capture_output=True, text=True, env=env, check=False)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert (installed / "ansible_collections/xmlnest/libvirt/plugins/modules/nested.py").is_file()
    uri = node_file(tmp_path, NODE)
    run = playbook(tmp_path, nested_task(uri, name=["amd-off"]), "--check", json_out=True,
                   ANSIBLE_COLLECTIONS_PATH=str(installed))  # fmt: skip
    (res,) = registered(run)
    assert res["domains"][0]["status"] == "would change"


def test_galaxy_version_is_xmlnests() -> None:
    text = (COLLECTION / "galaxy.yml").read_text()
    assert re.search(r"^version: (\S+)$", text, re.M)[1] == xmlnest.__version__  # type: ignore[index]


def test_real_required_is_what_ci_sets() -> None:
    """Under .ci/run nothing here may skip: ansible-core is in the test extra."""
    if real_required():
        tool("ansible-playbook")
        tool("ansible-test")
    assert TEST_NS.startswith("http://libvirt.org/")  # the node-file helpers' namespace
