"""--json with --check, -i and -o: one JSON Lines record per input, as docs/cli.md says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

SAMPLES = REPO / "samples"
KEYS = {"path", "status", "findings"}
FINDING_KEYS = {"rule", "level", "line", "message", "hint"}


def _records(out: bytes) -> list[dict[str, object]]:
    lines = out.decode().splitlines()
    records = [json.loads(ln) for ln in lines]
    for rec in records:
        assert set(rec) == KEYS
        for f in rec["findings"]:
            assert set(f) == FINDING_KEYS
    return records


def _tree(tmp_path: Path) -> Path:
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "a-amd.xml").write_bytes((SAMPLES / "amd-l1.xml").read_bytes())
    (folder / "b-z.xml").write_bytes((SAMPLES / "ibmz-l1.xml").read_bytes())
    (folder / "c-bad.xml").write_bytes(b"<domain")
    (folder / "d-net.xml").write_bytes(b"<network><name>n</name></network>\n")
    return folder


def test_check_json_has_one_record_per_input_in_order(tmp_path: Path) -> None:
    folder = _tree(tmp_path)
    r = run_cli(["--check", "--json", "--arch", "auto", str(folder)])
    assert r.code == 3
    recs = _records(r.out)
    assert [(Path(str(x["path"])).name, x["status"]) for x in recs] == [
        ("a-amd.xml", "would change"),
        ("b-z.xml", "unchanged"),
        ("c-bad.xml", "rejected"),
        ("d-net.xml", "skipped"),
    ]
    amd = recs[0]["findings"]
    assert {"rule": "XN202", "level": "warning"}.items() <= amd[0].items()  # type: ignore[index]
    bad = recs[2]["findings"]
    assert bad[0]["level"] == "error" and bad[0]["rule"] is None  # type: ignore[index]
    assert bad[0]["line"] == 1  # type: ignore[index]
    assert not any(ln.endswith(": would change") for ln in r.err_lines)  # JSON says it
    assert r.err_lines[-1].startswith("xmlnest: 1 would change, 1 already nested, 1 skipped")


def test_in_place_json_says_changed_and_rules_carry_errors(tmp_path: Path) -> None:
    folder = _tree(tmp_path)
    live = folder / "e-live.xml"
    live.write_bytes((SAMPLES / "intel-l1.xml").read_bytes().replace(b"<domain type='kvm'", b"<domain type='kvm' id='4'", 1))
    r = run_cli(["-i", "--json", str(folder)])
    recs = {Path(str(x["path"])).name: x for x in _records(r.out)}
    assert recs["a-amd.xml"]["status"] == "changed"
    assert recs["e-live.xml"]["status"] == "rejected"
    err = recs["e-live.xml"]["findings"][0]  # type: ignore[index]
    assert err["rule"] == "XN113" and err["level"] == "error"
    assert err["hint"] == "read the stored definition with 'virsh dumpxml --inactive --security-info intel-l1'"
    assert b"svm" in (folder / "a-amd.xml").read_bytes()


def test_output_dir_json(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    r = run_cli(["-o", str(out_dir), "--json", str(SAMPLES / "intel-l1.xml")])
    assert r.code == 0, r.err
    (rec,) = _records(r.out)
    assert rec["status"] == "changed"


def test_strict_json_lists_the_warnings_as_errors() -> None:
    r = run_cli(["--check", "--json", "--strict", "--arch", "amd", str(SAMPLES / "amd-l1.xml")])
    assert r.code == 3
    (rec,) = _records(r.out)
    assert rec["status"] == "rejected"
    assert [f["level"] for f in rec["findings"]][:1] == ["error"]  # type: ignore[attr-defined]


def test_ignored_rules_are_not_reported() -> None:
    r = run_cli(
        ["--check", "--json", "--ignore", "XN202", "--arch", "amd", str(SAMPLES / "amd-l1.xml")]
    )
    (rec,) = _records(r.out)
    assert all(f["rule"] != "XN202" for f in rec["findings"])  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json"], "--json reports per input with --check, -i or -o"),
        (["--json", "--diff"], "--json and --diff both print on stdout; use --diff=json"),
        (["--json", "--check", "--diff=json"], "--json and --diff both print on stdout"),
    ],
)
def test_json_outside_a_reporting_mode_is_a_usage_error(args: list[str], message: str) -> None:
    r = run_cli([*args, str(SAMPLES / "intel-l1.xml")])
    assert r.code == 2 and r.out == b""
    assert r.err_lines[0].startswith(f"xmlnest: {message}")


def test_docs_json_sample_is_real_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    reference = (REPO / "docs" / "cli.md").read_text()
    m = re.search(r"## JSON Lines \(`--json`\).*?```json\n(.*?)\n```", reference, re.S)
    assert m
    r = run_cli(["--check", "--json", "--arch", "amd", "samples/amd-l1.xml"])
    assert r.out.decode().strip() == m.group(1)
