"""The command-line contract: exit codes, stdout/stderr separation, stdin vs files, in place."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

PLAIN = b"""<domain type='kvm'>
  <name>l1</name>
  <memory unit='KiB'>1048576</memory>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
  <clock offset='utc'/>
</domain>
"""
NESTED = PLAIN.replace(
    b"  <clock offset='utc'/>", b"  <cpu mode='host-passthrough'/>\n  <clock offset='utc'/>"
)
ARM = PLAIN.replace(b"x86_64", b"aarch64").replace(b"q35", b"virt")


def test_single_input_prints_xml_on_stdout_only() -> None:
    r = run_cli(["--arch", "intel", "--no-validate"], PLAIN)
    assert r.code == 0
    assert r.out == NESTED
    assert r.err == ""


def test_dash_means_stdin() -> None:
    assert run_cli(["--arch", "intel", "--no-validate", "-"], PLAIN).out == NESTED


def test_unchanged_input_comes_out_as_the_same_bytes() -> None:
    r = run_cli(["--arch", "intel"], NESTED)
    assert (r.code, r.out) == (0, NESTED)


def test_several_inputs_without_mode_is_a_usage_error(tmp_path: Path) -> None:
    a, b = tmp_path / "a.xml", tmp_path / "b.xml"
    a.write_bytes(PLAIN)
    b.write_bytes(PLAIN)
    r = run_cli(["--arch", "intel", str(a), str(b)])
    assert r.code == 2
    assert r.out == b""
    assert "several inputs need --check, --diff, --in-place" in r.err


@pytest.mark.parametrize(
    "args",
    [["--model", "Haswell", "--passthrough"], ["--check", "--in-place", "x.xml"], ["--arch", "x"]],
)
def test_contradictory_or_bad_flags_are_usage_errors(args: list[str]) -> None:
    r = run_cli(args, PLAIN)
    assert r.code == 2
    assert r.out == b""
    assert r.err.startswith("xmlnest:") or "Usage" in r.err


def test_check_exit_codes(tmp_path: Path) -> None:
    plain, nested = tmp_path / "plain.xml", tmp_path / "nested.xml"
    plain.write_bytes(PLAIN)
    nested.write_bytes(NESTED)
    r = run_cli(["--arch", "intel", "--check", str(plain), str(nested)])
    assert r.code == 1
    assert r.out == b""
    assert f"{plain}: would change" in r.err_lines
    assert r.err_lines[-1].startswith("xmlnest: 1 would change, 1 already nested, 0 skipped")
    assert run_cli(["--arch", "intel", "--check", str(nested)]).code == 0
    assert plain.read_bytes() == PLAIN  # --check writes nothing


def test_the_summary_says_changed_only_when_files_were_written(tmp_path: Path) -> None:
    for name in ("a.xml", "b.xml"):
        (tmp_path / name).write_bytes(PLAIN)
    r = run_cli(["--arch", "intel", "--diff", str(tmp_path)])
    assert r.code == 0
    assert r.err_lines[-1].startswith("xmlnest: 2 would change, 0 already nested")
    assert (tmp_path / "a.xml").read_bytes() == PLAIN
    r = run_cli(["--arch", "intel", "-i", str(tmp_path)])
    assert r.err_lines[-1].startswith("xmlnest: 2 changed, 0 already nested")


def test_rejection_wins_over_change_and_batch_goes_on(tmp_path: Path) -> None:
    plain, arm = tmp_path / "plain.xml", tmp_path / "arm.xml"
    plain.write_bytes(PLAIN)
    arm.write_bytes(ARM)
    r = run_cli(["--arch", "auto", "--check", str(arm), str(plain)])
    assert r.code == 3
    assert any(ln.startswith(f"{arm}:5: XN101") for ln in r.err_lines), r.err
    assert any(ln == f"{plain}: would change" for ln in r.err_lines)


def test_rejected_stdin_prints_nothing_on_stdout() -> None:
    r = run_cli([], ARM)
    assert r.code == 3
    assert r.out == b""
    assert r.err_lines == [r.err_lines[0]]
    assert r.err_lines[0].startswith(
        "<stdin>:5: XN101 nested virtualization is not supported on ARM"
    )


def test_diff_has_git_headers_and_no_timestamps(tmp_path: Path) -> None:
    f = tmp_path / "vm.xml"
    f.write_bytes(PLAIN)
    r = run_cli(["--arch", "intel", "--diff", str(f)])
    assert r.code == 0
    text = r.out.decode()
    name = str(f).lstrip("/")
    assert text.startswith(f"--- a/{name}\n+++ b/{name}\n@@ ")
    assert "+  <cpu mode='host-passthrough'/>\n" in text
    assert f.read_bytes() == PLAIN
    assert run_cli(["--arch", "intel", "--diff", str(f)], b"").out  # path after bare --diff


def test_diff_of_unchanged_input_is_empty() -> None:
    r = run_cli(["--arch", "intel", "--diff", "-"], NESTED)
    assert (r.code, r.out) == (0, b"")


def test_in_place_rewrites_changed_keeps_mode_and_unchanged_mtime(tmp_path: Path) -> None:
    plain, nested = tmp_path / "plain.xml", tmp_path / "nested.xml"
    plain.write_bytes(PLAIN)
    nested.write_bytes(NESTED)
    os.chmod(plain, 0o640)
    old = os.stat(nested).st_mtime_ns
    os.utime(nested, ns=(old - 10**9, old - 10**9))
    before = os.stat(nested).st_mtime_ns
    r = run_cli(["--arch", "intel", "-i", str(plain), str(nested)])
    assert r.code == 0, r.err
    assert r.out == b""
    assert plain.read_bytes() == NESTED
    assert stat.S_IMODE(os.stat(plain).st_mode) == 0o640
    assert os.stat(nested).st_mtime_ns == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nested.xml", "plain.xml"]


def test_in_place_never_touches_a_rejected_file(tmp_path: Path) -> None:
    arm = tmp_path / "arm.xml"
    arm.write_bytes(ARM)
    before = os.stat(arm).st_mtime_ns
    r = run_cli(["-i", str(arm)])
    assert r.code == 3
    assert arm.read_bytes() == ARM
    assert os.stat(arm).st_mtime_ns == before
    assert [p.name for p in tmp_path.iterdir()] == ["arm.xml"]


def test_in_place_follows_symlinks(tmp_path: Path) -> None:
    real = tmp_path / "real.xml"
    real.write_bytes(PLAIN)
    link = tmp_path / "link.xml"
    link.symlink_to(real)
    assert run_cli(["--arch", "intel", "-i", str(link)]).code == 0
    assert link.is_symlink()
    assert real.read_bytes() == NESTED


def test_in_place_refuses_stdin() -> None:
    assert run_cli(["-i"], PLAIN).code == 2


def test_missing_file_is_rejected_with_its_name(tmp_path: Path) -> None:
    r = run_cli(["--check", str(tmp_path / "nope.xml")])
    assert r.code == 3
    assert r.err_lines == [f"{tmp_path / 'nope.xml'}: no such file; check the path"]


def test_malformed_input_names_the_line() -> None:
    r = run_cli(["--arch", "intel"], b"<domain type='kvm'>\n<name>x</nam>\n</domain>\n")
    assert r.code == 3
    assert r.err_lines[0].startswith("<stdin>:2: not well-formed XML")


def test_not_a_domain_named_explicitly_is_rejected() -> None:
    r = run_cli([], b"<network><name>default</name></network>\n")
    assert r.code == 3
    assert "not a libvirt <domain>" in r.err


def test_arch_mismatch_names_both() -> None:
    r = run_cli(["--arch", "power9"], PLAIN)
    assert r.code == 3
    assert "--arch power9 does not fit this domain's arch 'x86_64'" in r.err


def test_auto_uses_the_host_cpu_when_the_xml_cannot_tell(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu svm npt\n\n"
    )
    xml = PLAIN.replace(
        b"<clock",
        b"<cpu mode='host-passthrough'>\n    <feature policy='disable' name='svm'/>\n  </cpu>\n  <clock",
    )
    r = run_cli(["--host-root", str(tmp_path), "--no-validate"], xml)
    assert r.code == 0, r.err
    assert b"name='svm'" not in r.out
    empty = tmp_path / "empty"
    empty.mkdir()
    # Passing the host CPU through is the same edit for either vendor: no vendor needed.
    neutral = run_cli(["--host-root", str(empty)], xml)
    assert neutral.code == 0, neutral.err
    assert b"name='svm'" not in neutral.out and "XN217" not in neutral.err
    # A neutral model that must require vmx or svm needs the vendor: refused, not guessed.
    qemu64 = PLAIN.replace(
        b"<clock",
        b"<cpu mode='custom' match='exact'>\n    <model>qemu64</model>\n  </cpu>\n  <clock",
    )
    r = run_cli(["--host-root", str(empty)], qemu64)
    assert r.code == 3
    assert "XN108" in r.err and "--arch intel or --arch amd" in r.err


def test_warnings_go_to_stderr_and_quiet_silences_them() -> None:
    xml = (
        b"<domain type='kvm'><name>p</name><memory>1</memory><os>"
        b"<type arch='ppc64le' machine='pseries'>hvm</type></os>"
        b"<features><nested-hv state='off'/></features></domain>"
    )
    r = run_cli(["--no-validate"], xml)
    assert r.code == 0
    assert b"<nested-hv state='on'/>" in r.out
    assert "warning: XN213" in r.err
    assert run_cli(["-q", "--no-validate"], xml).err == ""
    strict = run_cli(["--strict", "--no-validate"], xml)
    assert strict.code == 3 and strict.out == b""


def test_help_states_exit_codes() -> None:
    r = run_cli(["--help"])
    assert r.code == 0
    text = r.out.decode()
    for code in (
        "0  success",
        "1  --check",
        "2  usage error",
        "3  at least one input was rejected",
        "130  interrupted",
    ):
        assert code in text


def test_console_script_and_module_entry_point(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "xmlnest", "--arch", "intel", "--no-validate"],
        input=PLAIN,
        capture_output=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == NESTED


def test_ctrl_c_with_jobs_stops_cleanly(tmp_path: Path) -> None:
    """Ctrl-C hits the whole process group: exit 130, no traceback, every file whole."""
    import signal
    import time

    src = (REPO / "samples" / "intel-l1.xml").read_bytes()
    expected = run_cli(["--arch", "intel", "--no-validate", "-"], src).out
    for i in range(3000):
        (tmp_path / f"vm{i:04d}.xml").write_bytes(src)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xmlnest",
            "--arch",
            "intel",
            "--no-validate",
            "-i",
            "-j",
            "2",
            str(tmp_path),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait until the batch is under way
        if any((tmp_path / f"vm{i:04d}.xml").read_bytes() == expected for i in range(50)):
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"vm{i:04d}.xml" for i in range(3000)]  # no temp files left
    contents = {p.read_bytes() for p in tmp_path.iterdir()}
    assert contents <= {src, expected}
    assert src in contents  # it really stopped early


def test_in_place_fsyncs_each_folder_once_per_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xmlnest.files import atomic

    synced: list[str | Path] = []
    monkeypatch.setattr(atomic, "_fsync_dir", synced.append)
    for i in range(3):
        (tmp_path / f"{i}.xml").write_bytes(PLAIN)
    r = run_cli(["--arch", "intel", "--no-validate", "-i", str(tmp_path)])
    assert r.code == 0, r.err
    assert [os.path.realpath(f) for f in synced] == [str(tmp_path.resolve())]


def _walk_reference(root: str, include: list[str], exclude: list[str]) -> list[str]:
    """What the walk must yield, spelled with os.walk."""
    from xmlnest.files import _match

    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        below = os.path.relpath(dirpath, root)
        for name in sorted(filenames):
            rel = name if below == "." else f"{below}/{name}"
            if not name.endswith(".xml"):
                continue
            if include and not any(_match(rel, g) for g in include):
                continue
            if any(_match(rel, g) for g in exclude):
                continue
            out.append(os.path.join(dirpath, name))
    return out


@pytest.mark.parametrize(
    ("include", "exclude"),
    [([], []), (["*.xml"], ["old/*"]), (["b*"], []), ([], ["deep/*", "z.xml"])],
)
def test_the_walk_goes_as_os_walk_goes(
    tmp_path: Path, include: list[str], exclude: list[str]
) -> None:
    from xmlnest.files import _walk

    for rel in ["z.xml", "a.xml", "b.txt", ".hidden.xml", "old/a.xml", "old/b.xml",
                "deep/x/y/b.xml", "deep/a.xml", ".git/c.xml", "Deep/a.xml"]:  # fmt: skip
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(PLAIN)
    (tmp_path / "alias.xml").symlink_to("a.xml")
    (tmp_path / "broken.xml").symlink_to("nowhere.xml")
    (tmp_path / "linked-dir").symlink_to("old")
    (tmp_path / "dir.xml").mkdir()
    walked = list(_walk(str(tmp_path), include, exclude))
    assert [p for p, _, _, _ in walked] == _walk_reference(str(tmp_path), include, exclude)
    for path, key, link, regular in walked:
        assert link == os.path.islink(path)
        assert regular == (not link and stat.S_ISREG(os.lstat(path).st_mode))
        if not link:
            st = os.stat(path)
            assert key == (st.st_dev, st.st_ino)


def test_with_jobs_this_process_takes_every_jobs_th_task_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--jobs 2 is this process and one worker: the even tasks are done here (the odd
    ones in the worker, whose calls this process never sees), results still in order."""
    from xmlnest.cli import parallel
    from xmlnest.cli.config import RunConfig
    from xmlnest.cli.worker import FileResult
    from xmlnest.files import Input

    for i in range(100):
        (tmp_path / f"vm{i:03d}.xml").write_bytes(PLAIN.replace(b"<name>", b"<name>%d-" % i, 1))
    from xmlnest.cli import worker as runner
    here: list[list[str]] = []
    real = runner.processed

    def counting(items: list[Input], config: RunConfig) -> Iterator[FileResult]:
        here.append([i.name for i in items])
        return real(items, config)

    monkeypatch.setattr(parallel, "processed", counting)
    r = run_cli(["--arch", "intel", "--check", "--jobs", "2", str(tmp_path)])
    assert r.code == 1, r.err
    named = [ln.split(": ")[0] for ln in r.err_lines if ln.endswith(": would change")]
    assert named == sorted(str(f) for f in tmp_path.iterdir())  # in input order
    chunks = list(parallel._chunks([Input(n, n) for n in named], 2))
    assert here == [[i.name for i in c] for c in chunks[::2]]  # every other task, here


@pytest.mark.parametrize(("count", "jobs"), [(1, 2), (70, 2), (10_000, 2), (5_000, 8)])
def test_worker_tasks_cover_the_inputs_in_order_and_shrink_towards_the_end(
    count: int, jobs: int
) -> None:
    from xmlnest.cli import parallel
    from xmlnest.files import Input

    items = [Input(str(i), str(i)) for i in range(count)]
    chunks = list(parallel._chunks(items, jobs))
    assert [i for c in chunks for i in c] == items
    sizes = [len(c) for c in chunks]
    assert max(sizes) <= parallel.CHUNK
    assert sizes[:-1] == sorted(sizes[:-1], reverse=True)  # the last takes what is left


def test_host_check_takes_no_paths_and_host_root_needs_it() -> None:
    sample = str(REPO / "samples" / "intel-l1.xml")
    with_paths = run_cli(["--host-check", sample])
    assert with_paths.code == 2 and with_paths.out == b""
    assert "--host-check reports on this host and reads no domain XML" in with_paths.err
    stray = run_cli(["--arch", "intel", "--host-root", "/", sample])
    assert stray.code == 2 and stray.out == b""
    assert "--host-root goes with --host-check" in stray.err
    for args in (["--host-check"], []):
        missing = run_cli([*args, "--host-root", "/nonexistent-xmlnest", *([] if args else [sample])])
        assert missing.code == 2 and missing.out == b"", missing.err
        assert "/nonexistent-xmlnest" in missing.err and "NOT supported" not in missing.err


@pytest.mark.parametrize("word", ["json", "unified"])
def test_diff_followed_by_a_format_word_points_to_the_equals_form(word: str) -> None:
    r = run_cli(["--diff", word, str(REPO / "samples" / "intel-l1.xml")])
    assert r.code == 2 and r.out == b""
    assert r.err_lines == [
        f"xmlnest: '{word}' after --diff was read as a PATH (no such file); write --diff={word}"
    ]


# ----------------------------------------------------------------- --output-dir never loses a file


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_output_dir_refuses_two_inputs_whose_copies_collide(tmp_path: Path) -> None:
    """Two folders that both hold vm.xml: one copy would overwrite the other."""
    a, b = tmp_path / "hostA", tmp_path / "hostB"
    a.mkdir()
    b.mkdir()
    (a / "vm.xml").write_bytes(PLAIN)
    (b / "vm.xml").write_bytes(NESTED)
    out = tmp_path / "out"
    before = _files(tmp_path)
    r = run_cli(["--arch", "intel", "-o", str(out), str(a), str(b)])
    assert r.code == 2, r.err
    assert r.err_lines == [
        f"xmlnest: --output-dir {out}: {a}/vm.xml and {b}/vm.xml would both be written to "
        f"{out}/vm.xml; give each folder its own run and output folder"
    ]
    assert not out.exists() and _files(tmp_path) == before
    # named files with the same name collide too (absolute paths are copied by name)
    r = run_cli(["--arch", "intel", "-o", str(out), str(a / "vm.xml"), str(b / "vm.xml")])
    assert r.code == 2 and "would both be written to" in r.err
    assert not out.exists()
    # each folder into its own output folder works
    for src in (a, b):
        assert run_cli(["--arch", "intel", "-q", "-o", str(out / src.name), str(src)]).code == 0
    assert _files(out) == {"hostA/vm.xml": NESTED, "hostB/vm.xml": NESTED}


def test_output_dir_refuses_to_write_over_the_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-o .` beside the input would rewrite the original, which -o promises to keep."""
    vm = tmp_path / "vm.xml"
    vm.write_bytes(PLAIN)
    os.utime(vm, ns=(10**18, 10**18))
    monkeypatch.chdir(tmp_path)
    for args in (["-o", ".", "vm.xml"], ["-o", str(tmp_path), str(vm)], ["-o", ".", str(tmp_path)]):
        r = run_cli(["--arch", "intel", *args])
        assert r.code == 2, (args, r.err)
        assert len(r.err_lines) == 1 and "would overwrite the file itself" in r.err
        assert "use -i to rewrite files in place" in r.err
        assert vm.read_bytes() == PLAIN and os.stat(vm).st_mtime_ns == 10**18
    # a copy of one input over another input is refused as well
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "vm.xml").write_bytes(ARM)
    r = run_cli(["--arch", "intel", "-o", "out", "vm.xml", "out/vm.xml"])
    assert r.code == 2
    assert "the copy of vm.xml would overwrite the input out/vm.xml" in r.err
    assert (tmp_path / "out" / "vm.xml").read_bytes() == ARM
    assert sorted(_files(tmp_path)) == ["out/vm.xml", "vm.xml"]


def test_output_dir_copy_of_a_path_that_climbs_out_stays_inside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "vm.xml").write_bytes(PLAIN)
    monkeypatch.chdir(tmp_path / "work")
    r = run_cli(["--arch", "intel", "-o", "out", "../vm.xml"])
    assert r.code == 0, r.err
    assert _files(tmp_path) == {"vm.xml": PLAIN, "work/out/vm.xml": NESTED}


# ------------------------------------------------------------------ nothing found is not success


def _no_input_cases(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    empty, other, templates = tmp_path / "empty", tmp_path / "other", tmp_path / "templates"
    empty.mkdir()
    other.mkdir()
    (other / "notes.txt").write_text("not xml")
    (other / "sub").mkdir()
    (other / "sub" / "vm.XML.bak").write_bytes(PLAIN)
    templates.mkdir()
    (templates / "a.xml").write_bytes(PLAIN)
    folder = (
        "no *.xml file in this folder (nor below it); name the folder that holds the domain XML"
    )
    return {
        "empty": ([str(empty)], f"{empty}: {folder}"),
        "no-xml": ([str(other)], f"{other}: {folder}"),
        "include": (
            ["--include", "web/*", str(templates)],
            f"{templates}: no *.xml file here matches --include 'web/*'; "
            "globs match the path below the folder or the file name",
        ),
        "exclude": (
            ["--exclude", "*.xml", str(templates)],
            f"{templates}: no *.xml file here matches --exclude '*.xml'; "
            "globs match the path below the folder or the file name",
        ),
    }


@pytest.mark.parametrize("case", ["empty", "no-xml", "include", "exclude"])
@pytest.mark.parametrize("mode", [["--check"], ["--diff"], ["-i"], ["-o", "OUT"]])
def test_a_run_that_finds_no_input_says_so_and_fails(
    tmp_path: Path, case: str, mode: list[str]
) -> None:
    args, line = _no_input_cases(tmp_path)[case]
    mode = [str(tmp_path / "out") if m == "OUT" else m for m in mode]
    r = run_cli(["--arch", "intel", *mode, *args])
    assert r.code == 3, r.err
    assert r.out == b""
    assert r.err_lines[:-1] == [line]
    assert re.fullmatch(r"xmlnest: 0 files in \d+\.\d\d s", r.err_lines[-1]), r.err
    quiet = run_cli(["--arch", "intel", "-q", *mode, *args])
    assert (quiet.code, quiet.err_lines) == (3, [line])  # the reason for exit 3 is an error


def test_an_empty_folder_beside_real_inputs_is_a_warning(tmp_path: Path) -> None:
    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.mkdir()
    full.mkdir()
    (full / "vm.xml").write_bytes(NESTED)
    r = run_cli(["--arch", "intel", "--check", str(empty), str(full)])
    assert r.code == 0, r.err
    assert r.err_lines[0] == (
        f"{empty}: warning: no *.xml file in this folder (nor below it); "
        "name the folder that holds the domain XML"
    )
    assert r.err_lines[1].startswith("xmlnest: 0 would change, 1 already nested, 0 skipped")
    assert run_cli(["--arch", "intel", "-q", "--check", str(empty), str(full)]).err == ""


NETWORK = b"<network><name>default</name></network>\n"


@pytest.mark.parametrize("mode", [["--check"], ["--diff"], ["-i"], ["--check", "--json"]])
def test_a_folder_of_only_non_domain_xml_found_no_domain(tmp_path: Path, mode: list[str]) -> None:
    """Like an empty folder: a CI check over the wrong folder (networks, pools) must fail,
    not pass as if every domain were nested."""
    nets = tmp_path / "nets"
    (nets / "sub").mkdir(parents=True)
    (nets / "default.xml").write_bytes(NETWORK)
    (nets / "sub" / "pool.xml").write_bytes(b"<pool type='dir'><name>p</name></pool>\n")
    r = run_cli([*mode, str(nets)])
    assert r.code == 3, r.err
    assert r.err_lines[0] == (
        f"{nets}: no domain XML in this folder (nor below it): its 2 *.xml files are not "
        "<domain>; name the folder that holds the domain XML"
    )
    assert r.err_lines[1].startswith("xmlnest: 0 ")
    assert "2 skipped" in r.err_lines[1]
    quiet = run_cli(["-q", *mode, str(nets)])
    assert (quiet.code, quiet.err_lines) == (3, r.err_lines[:1])


def test_named_non_domain_files_with_skip_non_domain_still_pass(tmp_path: Path) -> None:
    """What the pre-commit hooks run: named files, --skip-non-domain; a commit of a
    network definition alone is not an error."""
    (tmp_path / "net.xml").write_bytes(NETWORK)
    (tmp_path / "pom.xml").write_bytes(b"<project/>\n")
    names = [str(tmp_path / "net.xml"), str(tmp_path / "pom.xml")]
    r = run_cli(["--check", "--diff", "--skip-non-domain", *names])
    assert r.code == 0, r.err
    assert r.err_lines == [r.err_lines[0]] and "2 skipped" in r.err_lines[0]


def test_a_non_domain_folder_beside_domains_is_a_warning(tmp_path: Path) -> None:
    nets, vms = tmp_path / "nets", tmp_path / "vms"
    nets.mkdir()
    vms.mkdir()
    (nets / "default.xml").write_bytes(NETWORK)
    (vms / "vm.xml").write_bytes(NESTED)
    (vms / "net.xml").write_bytes(NETWORK)  # a folder holding a domain is fine as it is
    r = run_cli(["--arch", "intel", "--check", str(nets), str(vms)])
    assert r.code == 0, r.err
    assert r.err_lines[0] == (
        f"{nets}: warning: no domain XML in this folder (nor below it): its 1 *.xml file is "
        "not <domain>; name the folder that holds the domain XML"
    )
    assert r.err_lines[1].startswith("xmlnest: 0 would change, 1 already nested, 2 skipped")
    assert run_cli(["--arch", "intel", "--check", str(vms)]).err_lines[0].startswith("xmlnest: 0")


# ------------------------------------------------------------------------------- messages


def test_a_folder_without_a_mode_says_a_folder_needs_one(tmp_path: Path) -> None:
    (tmp_path / "vm.xml").write_bytes(PLAIN)
    r = run_cli(["--arch", "intel", str(tmp_path)])
    assert r.code == 2 and r.out == b""
    assert r.err_lines == [
        f"xmlnest: {tmp_path} is a folder: a folder needs --check, --diff, --in-place or "
        "--output-dir (stdout takes one document)"
    ]


def _with_tty_stdin(args: list[str], data: bytes) -> tuple[int, bytes, bytes]:
    """Run xmlnest with a terminal as stdin, type ``data`` and Ctrl-D."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "xmlnest", *args],
        cwd=REPO,
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    os.close(slave)
    try:
        os.write(master, data + b"\n\x04")  # Ctrl-D at the start of a line: end of input
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
    return proc.returncode, out, err


def test_a_terminal_on_stdin_is_told_what_xmlnest_waits_for() -> None:
    xml = b"<domain type='kvm'><name>t</name><os><type arch='x86_64'>hvm</type></os></domain>"
    code, out, err = _with_tty_stdin(["--arch", "intel", "--no-validate"], xml)
    assert code == 0, err
    assert err.decode().splitlines() == [
        "xmlnest: reading domain XML from stdin (Ctrl-D to end; see --help)"
    ]
    assert b"<cpu mode='host-passthrough'/>" in out
    code, out, err = _with_tty_stdin(["--arch", "intel", "--no-validate", "-q"], xml)
    assert (code, err) == (0, b"")
    # a pipe is not told: stderr stays empty (test_single_input_prints_xml_on_stdout_only)


@pytest.mark.parametrize("args", [["--domain", "vm", "--check"], ["--status"]])
def test_an_unknown_libvirt_backend_is_a_usage_error(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a traceback with exit 1 (which --check means "would change")."""
    monkeypatch.setenv("XMLNEST_LIBVIRT_BACKEND", "libvirtd")
    r = run_cli(["-c", "test:///default", *args])
    assert (r.code, r.out) == (2, b"")
    assert r.err_lines == [
        "xmlnest: XMLNEST_LIBVIRT_BACKEND='libvirtd' is not a libvirt backend: expected "
        "python, virsh or auto"
    ]


def _screen(raw: str) -> list[str]:
    """The lines a terminal shows for ``raw``: a carriage return goes back to the start of
    the line, ``ESC [ K`` erases to its end, other escapes are dropped."""
    lines: list[str] = []
    line: list[str] = []
    col = 0
    for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|\r|\n|[^\r\n\x1b]", raw):
        if token == "\n":
            lines.append("".join(line))
            line, col = [], 0
        elif token == "\r":
            col = 0
        elif token == "\x1b[K":
            del line[col:]
        elif token.startswith("\x1b"):
            continue
        else:
            line[col : col + 1] = [token]
            col += 1
    if line:
        lines.append("".join(line))
    return lines


def test_messages_never_share_a_line_with_the_progress_bar(tmp_path: Path) -> None:
    """On a terminal, 60 files each with a warning: every message line shows the message
    alone (the bar is erased first and drawn again after), never glued to the bar."""
    import pty
    import select

    amd = (REPO / "samples" / "amd-l1.xml").read_bytes()  # a warning (XN202) and a change
    for i in range(60):
        (tmp_path / f"vm{i:02}.xml").write_bytes(amd)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "xmlnest", "--check", "--no-validate", str(tmp_path)],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "100"},
    )
    os.close(slave)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the other side closed
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        proc.wait(timeout=60)
    raw = b"".join(chunks).decode()
    bar = re.compile(r"xmlnest +\[")
    assert bar.search(raw)  # the bar was drawn
    shown = [ln for ln in _screen(raw) if ln.strip()]
    messages = [ln for ln in shown if not bar.match(ln)]
    assert len([ln for ln in messages if " warning: XN202 " in ln]) == 60, shown
    for ln in messages:
        assert ln.startswith((str(tmp_path), "xmlnest: ")), ln
        assert not bar.search(ln) and "#" not in ln, ln
    assert messages[-1].startswith("xmlnest: 60 would change, 0 already nested"), messages[-1]
    assert "] 60/60" in raw  # the counts are the real ones
    assert proc.returncode == 1


def _tree_with_old_folders(tmp_path: Path) -> Path:
    root = tmp_path / "t"
    for rel in ("vm.xml", "old/vm1.xml", "archive/old/vm2.xml", "archive/vm3.xml", "keep/old.xml"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(NESTED)
    return root


@pytest.mark.parametrize(
    ("glob", "left"),
    [
        ("old", {"vm.xml", "archive/vm3.xml", "keep/old.xml"}),  # any folder named old
        ("old/", {"vm.xml", "archive/vm3.xml", "keep/old.xml"}),
        ("archive/old", {"vm.xml", "old/vm1.xml", "archive/vm3.xml", "keep/old.xml"}),
        ("arch*", {"vm.xml", "old/vm1.xml", "keep/old.xml"}),
        ("old.xml", {"vm.xml", "old/vm1.xml", "archive/old/vm2.xml", "archive/vm3.xml"}),
    ],
)
def test_exclude_matches_a_folder_by_name_or_path(tmp_path: Path, glob: str, left: set[str]) -> None:
    root = _tree_with_old_folders(tmp_path)
    r = run_cli(["--arch", "intel", "--check", "--json", "--exclude", glob, str(root)])
    assert r.code == 0, r.err
    import json

    walked = {Path(json.loads(ln)["path"]).relative_to(root).as_posix() for ln in r.out.decode().splitlines()}
    assert walked == left
    assert "warning" not in r.err


def test_an_exclude_glob_that_matches_nothing_is_a_warning(tmp_path: Path) -> None:
    root = _tree_with_old_folders(tmp_path)
    r = run_cli(["--arch", "intel", "--check", "--exclude", "olf", "--exclude", "old", str(root)])
    assert r.code == 0, r.err
    assert r.err_lines[0] == (
        "xmlnest: warning: --exclude 'olf' matched no file and no folder; a glob matches the "
        "path below the folder, or a file's or folder's name"
    )
    assert r.err_lines[1].startswith("xmlnest: 0 would change, 3 already nested")
    quiet = run_cli(["--arch", "intel", "--check", "-q", "--exclude", "olf", str(root)])
    assert (quiet.code, quiet.err) == (0, "")
    named = run_cli(["--arch", "intel", "--check", "--exclude", "olf", str(root / "vm.xml")])
    assert named.err == ""  # globs narrow folder walks only: nothing walked, nothing to say
