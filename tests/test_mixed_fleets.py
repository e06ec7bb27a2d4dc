"""Mixed fleets: --skip-unsupported skips (and counts) the domains that cannot nest by
their type or arch, over files, folders and libvirt domains, while real refusals of
nestable domains stay errors; --host-model leaves non-x86 domains their own edit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from tests.test_connection import FLEET, node_file

GOLDEN = REPO / "tests" / "golden"
# file name -> (golden input, status with --skip-unsupported, rule)
FOLDER = {
    "arm.xml": ("other/aarch64", "skipped", "XN101"),
    "riscv.xml": ("other/riscv64", "skipped", "XN101"),
    "tcg.xml": ("intel/domain-type-qemu", "skipped", "XN102"),
    "xen.xml": ("amd/domain-type-xen", "skipped", "XN102"),
    "powernv.xml": ("power9/powernv-machine", "skipped", "XN109"),
    "power8.xml": ("power9/host-model-power8-compat", "rejected", "XN105"),
    "z-hugepages.xml": ("ibmz/hugepages", "rejected", "XN106"),
    "forbid.xml": ("intel/custom-forbid-vmx", "rejected", "XN104"),
    "nested.xml": ("intel/host-passthrough-compliant", "unchanged", None),
    "pseries.xml": ("power9/no-features", "would change", None),
}
UNSUPPORTED = {name for name, (_, status, _) in FOLDER.items() if status == "skipped"}


def _fleet(folder: Path, names: set[str] | None = None) -> Path:
    folder.mkdir()
    for name, (case, _, _) in FOLDER.items():
        if names is None or name in names:
            shutil.copy(GOLDEN / case / "input.xml", folder / name)
    return folder


def _records(out: bytes) -> dict[str, dict[str, object]]:
    recs = [json.loads(ln) for ln in out.decode().splitlines()]
    return {Path(str(r["path"])).name: r for r in recs}


def test_without_the_flag_every_refusal_is_an_error(tmp_path: Path) -> None:
    folder = _fleet(tmp_path / "t")
    r = run_cli(["--check", "--json", str(folder)])
    assert r.code == 3
    recs = _records(r.out)
    assert {n for n, x in recs.items() if x["status"] == "rejected"} >= UNSUPPORTED


def test_skip_unsupported_skips_and_counts_what_cannot_nest(tmp_path: Path) -> None:
    folder = _fleet(tmp_path / "t")
    r = run_cli(["--check", "--json", "--skip-unsupported", str(folder)])
    recs = _records(r.out)
    assert {n: x["status"] for n, x in recs.items()} == {
        n: status for n, (_, status, _) in FOLDER.items()
    }
    for name, (_, status, rule) in FOLDER.items():
        if rule is None:
            continue
        (finding,) = [f for f in recs[name]["findings"] if f["rule"] == rule]  # type: ignore[attr-defined]
        assert finding["level"] == ("info" if status == "skipped" else "error"), name
    assert r.code == 3  # forbid, POWER8 compat and huge pages on IBM Z are still refused
    assert r.err_lines[-1].startswith("xmlnest: 1 would change, 1 already nested, 5 skipped, 3 rejected")
    assert not any(" XN101 " in ln or " XN102 " in ln or " XN109 " in ln for ln in r.err_lines)
    verbose = run_cli(["--check", "-v", "--skip-unsupported", str(folder)])
    assert f"{folder / 'arm.xml'}:" in verbose.err and "info: XN101 " in verbose.err


def test_a_fleet_of_nested_and_unsupported_domains_passes(tmp_path: Path) -> None:
    folder = _fleet(tmp_path / "t", UNSUPPORTED | {"nested.xml"})
    r = run_cli(["--check", "--skip-unsupported", str(folder)])
    assert r.code == 0, r.err
    assert r.err_lines == [r.err_lines[-1]]
    assert r.err_lines[-1].startswith("xmlnest: 0 would change, 1 already nested, 5 skipped, 0 rejected")
    # -i writes nothing of a skipped file, and a named one is skipped too
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert run_cli(["-i", "--skip-unsupported", str(folder)]).code == 0
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    one = run_cli(["--skip-unsupported", str(folder / "xen.xml")])
    assert (one.code, one.out, one.err) == (0, before["xen.xml"], "")  # handed on as it is


def test_live_xml_of_an_unsupported_domain_stays_an_error(tmp_path: Path) -> None:
    """Live XML is refused before anything else: never skipped."""
    arm = (GOLDEN / "other/aarch64/input.xml").read_bytes().replace(b"<domain type='kvm'", b"<domain type='kvm' id='3'", 1)
    r = run_cli(["--check", "--skip-unsupported", "-"], arm)
    assert r.code == 3 and " XN113 " in r.err


@pytest.fixture
def backend_env(monkeypatch: pytest.MonkeyPatch, backend: str) -> str:
    """Once per backend (conftest's ``backend`` checks it can be had)."""
    monkeypatch.setenv("XMLNEST_LIBVIRT_BACKEND", backend)
    return backend


def test_skip_unsupported_over_all_domains_and_status(tmp_path: Path, backend_env: str) -> None:
    uri = node_file(tmp_path, FLEET)
    r = run_cli(["-c", uri, "--all-domains", "--check", "--skip-unsupported"])
    assert r.code == 1, r.err  # only changes left: arm-run (XN101) and tcg-off (XN102) skipped
    assert not any(ln.startswith(("arm-run:", "tcg-off:")) for ln in r.err_lines), r.err
    assert ", 2 skipped, 0 rejected" in r.err_lines[-1]
    j = run_cli(["-c", uri, "--domain", "arm-run", "--check", "--json", "--skip-unsupported"])
    (rec,) = _records(j.out).values()
    assert rec["status"] == "skipped" and rec["findings"][0]["rule"] == "XN101"  # type: ignore[index]
    s = run_cli(["-c", uri, "--status", "--json", "--skip-unsupported"])
    rows = {x["name"]: x for x in map(json.loads, s.out.decode().splitlines()) if "name" in x}
    assert rows["arm-run"]["stored"] == "skipped XN101"
    assert rows["tcg-off"]["stored"] == "skipped XN102"
    assert s.code == 1  # would change and restart pending only: no refusal left


def test_host_model_gives_other_arches_their_own_edit(tmp_path: Path) -> None:
    """--host-model over a mixed folder: x86 domains get host-model, POWER9 its nested-hv,
    IBM Z its own check; no XN103."""
    folder = tmp_path / "t"
    folder.mkdir()
    shutil.copy(GOLDEN / "power9/no-features/input.xml", folder / "p.xml")
    shutil.copy(GOLDEN / "ibmz/host-model-compliant-no-final-newline/input.xml", folder / "z.xml")
    shutil.copy(GOLDEN / "amd/host-model/input.xml", folder / "a.xml")
    host = ["--host-root", str(REPO / "tests/hosts/amd-on")]  # the vendor guess: AMD
    r = run_cli(["--host-model", "--arch", "auto", *host, "--check", "--json", str(folder)])
    assert "XN103" not in r.err
    recs = _records(r.out)
    assert {n: x["status"] for n, x in recs.items()} == {
        "a.xml": "would change",
        "p.xml": "would change",
        "z.xml": "unchanged",
    }
    assert r.code == 1, r.err
    assert run_cli(["--host-model", "--arch", "power9", str(folder / "p.xml")]).code == 2


@pytest.mark.parametrize("case", ["other/aarch64", "amd/domain-type-xen", "intel/domain-type-qemu"])
def test_a_skipped_domain_on_stdout_is_handed_on_untouched(case: str) -> None:
    """The pipe into ``virsh define`` gets the document back, not an empty one."""
    raw = (GOLDEN / case / "input.xml").read_bytes()
    r = run_cli(["--skip-unsupported"], stdin=raw)
    assert (r.code, r.out) == (0, raw)
    assert run_cli([], stdin=raw).out == b""  # refused without the flag: nothing on stdout


def test_a_skipped_non_domain_on_stdout_is_handed_on_untouched() -> None:
    raw = b"<network><name>default</name></network>\n"
    r = run_cli(["--skip-non-domain"], stdin=raw)
    assert (r.code, r.out) == (0, raw)
