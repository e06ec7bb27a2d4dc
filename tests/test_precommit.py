"""The pre-commit hooks in .pre-commit-hooks.yaml, run by a real pre-commit.

pre-commit installs a hook from a git repository at a commit. To test the checkout as it
is on disk (committed or not), the tracked and new files are copied into a snapshot repo
and committed there; a user repo then names that snapshot with ``repo:``/``rev:`` and
passes ``args: [--arch, intel]``, which ``pre-commit try-repo`` cannot. The hook's
virtualenv is built once per module (``PRE_COMMIT_HOME`` in a shared temp folder).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, need, real_required

if not real_required():  # under XMLNEST_REQUIRE_REAL a missing pre-commit fails instead
    pytest.importorskip("pre_commit", reason="needs pre-commit: pip install -e '.[test]'")

PYPI = "https://pypi.org/simple"
INDEX_TIMEOUT = 5.0  # seconds the package index may take to answer the probe


def pip_index() -> str | None:
    """The package index pip installs from here (``index-url`` from pip's own view of its
    environment and config files, pypi.org by default); ``None`` with ``no-index`` set
    (then only ``find-links`` are used, which need no network)."""
    r = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    settings: dict[str, str] = {}
    for line in r.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            settings[key] = value.strip().strip("'\"")
    for scope in (":env:", "install", "global"):  # pip's precedence: env, command, global
        if settings.get(f"{scope}.no-index", "").lower() in ("1", "true", "yes", "on"):
            return None
    for scope in (":env:", "install", "global"):
        if f"{scope}.index-url" in settings:
            return settings[f"{scope}.index-url"]
    return PYPI


def index_problem(index: str | None, timeout: float = INDEX_TIMEOUT) -> str | None:
    """Why ``index`` cannot serve a hook's environment now, in a few words; ``None`` when
    it answers (any HTTP answer will do, a certificate pip may accept included) or when
    pip uses no index. One request, ``timeout`` seconds at most: pre-commit's own pip
    would retry for minutes."""
    import ssl
    import urllib.error
    import urllib.parse
    import urllib.request

    if index is None:
        return None
    if index.startswith("file:"):
        folder = Path(urllib.request.url2pathname(urllib.parse.urlparse(index).path))
        return None if folder.is_dir() else f"{index} is not a folder"
    request = urllib.request.Request(index.rstrip("/") + "/pip/", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # it answered
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLError):
            return None  # it answered; pip may trust its certificate (PIP_CERT)
        return f"{index} did not answer ({exc.reason})"
    except TimeoutError:
        return f"{index} did not answer within {timeout:g} s"
    except OSError as exc:
        return f"{index} did not answer ({exc})"


def require_index() -> None:
    """Skip (fail under XMLNEST_REQUIRE_REAL=1) at once when the package index cannot be
    reached: pre-commit builds each hook's environment from it."""
    problem = index_problem(pip_index())
    if problem is not None:
        need("the package index", f"pre-commit installs the hook's environment from it; {problem}")


SAMPLE = REPO / "samples" / "intel-l1.xml"
HOOK_ARGS = ["--arch", "intel"]


def _env(**extra: str) -> dict[str, str]:
    """A clean environment: no GIT_* from an enclosing hook, quiet git identity."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    env.update(
        GIT_AUTHOR_NAME="xmlnest tests",
        GIT_AUTHOR_EMAIL="tests@xmlnest.invalid",
        GIT_COMMITTER_NAME="xmlnest tests",
        GIT_COMMITTER_EMAIL="tests@xmlnest.invalid",
        GIT_CONFIG_NOSYSTEM="1",
        **extra,
    )
    return env


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, env=_env(), check=True, capture_output=True, text=True
    ).stdout.strip()


def _init_repo(path: Path) -> None:
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "user.name", "xmlnest tests")
    _git(path, "config", "user.email", "tests@xmlnest.invalid")
    _git(path, "config", "commit.gpgsign", "false")


def _commit_all(path: Path, message: str) -> str:
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "--no-verify", "-m", message)
    return _git(path, "rev-parse", "HEAD")


@dataclass(frozen=True)
class HookRepo:
    path: Path
    rev: str


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> HookRepo:
    """This checkout's working tree (tracked + new, not ignored) committed in a snapshot."""
    snap = tmp_path_factory.mktemp("xmlnest-snapshot")
    listed = _git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for rel in filter(None, listed.split("\0")):
        src = REPO / rel
        if src.is_file():
            dst = snap / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    assert (snap / ".pre-commit-hooks.yaml").is_file()
    _init_repo(snap)
    return HookRepo(snap, _commit_all(snap, "snapshot of the xmlnest checkout"))


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One hook environment for the whole module: built on first use, then reused (from
    the package index, which is asked once first: offline, the tests skip at once)."""
    require_index()
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture(scope="module")
def nested_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The sample after xmlnest, made by the installed CLI (the expected fixer output)."""
    r = subprocess.run(
        [sys.executable, "-m", "xmlnest", *HOOK_ARGS, str(SAMPLE)], capture_output=True
    )
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout != SAMPLE.read_bytes()
    return r.stdout


@dataclass
class UserRepo:
    path: Path
    home: Path

    def pre_commit(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", *args, "--color", "never"],
            cwd=self.path,
            env=_env(PRE_COMMIT_HOME=str(self.home)),
            capture_output=True,
            text=True,
            timeout=900,
        )

    def run(self, hook: str) -> subprocess.CompletedProcess[str]:
        return self.pre_commit("run", hook, "--all-files", "--verbose")


def _config(hook_repo: HookRepo) -> str:
    hooks = "".join(
        f"      - id: {hid}\n        args: [{', '.join(HOOK_ARGS)}]\n"
        for hid in ("xmlnest", "xmlnest-check")
    )
    return f"repos:\n  - repo: {hook_repo.path}\n    rev: {hook_repo.rev}\n    hooks:\n{hooks}"


@pytest.fixture
def user_repo(tmp_path: Path, hook_repo: HookRepo, pre_commit_home: Path) -> Iterator[UserRepo]:
    repo = tmp_path / "user"
    repo.mkdir()
    _init_repo(repo)
    (repo / ".pre-commit-config.yaml").write_text(_config(hook_repo))
    yield UserRepo(repo, pre_commit_home)


def _add(repo: UserRepo, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (repo.path / name).write_bytes(data)
    _commit_all(repo.path, "domains")


def _output(r: subprocess.CompletedProcess[str]) -> str:
    return r.stdout + r.stderr


def test_check_hook_fails_on_a_domain_that_needs_nesting_and_names_it(
    user_repo: UserRepo, nested_bytes: bytes
) -> None:
    plain = SAMPLE.read_bytes()
    _add(user_repo, {"needs.xml": plain, "nested.xml": nested_bytes})
    r = user_repo.run("xmlnest-check")
    out = _output(r)
    assert r.returncode == 1, out
    assert "needs.xml" in out
    assert "+++ b/needs.xml" in out  # the unified diff is shown
    assert "b/nested.xml" not in out  # the nested file is not reported as changing
    assert "-  <cpu mode='host-model' check='partial'/>" in out
    assert "+  <cpu mode='host-passthrough' check='partial'/>" in out
    # --check writes nothing
    assert (user_repo.path / "needs.xml").read_bytes() == plain
    assert (user_repo.path / "nested.xml").read_bytes() == nested_bytes


def test_fixer_hook_rewrites_in_place_then_passes(user_repo: UserRepo, nested_bytes: bytes) -> None:
    _add(user_repo, {"needs.xml": SAMPLE.read_bytes(), "nested.xml": nested_bytes})
    first = user_repo.run("xmlnest")
    assert first.returncode == 1, _output(first)
    assert "files were modified by this hook" in _output(first)
    assert (user_repo.path / "needs.xml").read_bytes() == nested_bytes
    assert (user_repo.path / "nested.xml").read_bytes() == nested_bytes
    second = user_repo.run("xmlnest")
    assert second.returncode == 0, _output(second)
    check = user_repo.run("xmlnest-check")
    assert check.returncode == 0, _output(check)


def test_already_nested_domain_passes_both_hooks_untouched(
    user_repo: UserRepo, nested_bytes: bytes
) -> None:
    _add(
        user_repo,
        {
            "nested.xml": nested_bytes,
            "pom.xml": b"<project><modelVersion>4.0.0</modelVersion></project>\n",
        },
    )
    before = (user_repo.path / "nested.xml").stat().st_mtime_ns
    for hook in ("xmlnest-check", "xmlnest"):
        r = user_repo.run(hook)
        assert r.returncode == 0, _output(r)
        assert "Passed" in r.stdout
    assert (user_repo.path / "nested.xml").read_bytes() == nested_bytes
    assert (user_repo.path / "nested.xml").stat().st_mtime_ns == before


def test_manifest_declares_both_hooks_for_xml_files() -> None:
    import yaml  # type: ignore[import-untyped]  # pre-commit depends on PyYAML

    hooks = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    assert hooks["xmlnest"]["entry"] == "xmlnest -i --skip-non-domain"
    assert hooks["xmlnest-check"]["entry"] == "xmlnest --check --diff --skip-non-domain"
    for h in hooks.values():
        assert h["language"] == "python"
        assert h["types"] == ["xml"]
        assert h["require_serial"] is False


# --- the package index probe: offline, the hook tests skip at once ----------------------------


def test_index_probe_names_an_index_that_refuses_or_never_answers() -> None:
    import socket
    import time

    assert index_problem(None) is None  # no-index: find-links only
    assert index_problem(Path("/").as_uri()) is None
    assert index_problem("file:///nonexistent-xmlnest-index/simple") == (
        "file:///nonexistent-xmlnest-index/simple is not a folder"
    )
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: connection refused
        refused = index_problem(f"http://127.0.0.1:{port}/simple")
    assert refused is not None and "did not answer" in refused and "refused" in refused
    with socket.socket() as silent:  # accepts the connection, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/simple"
        started = time.monotonic()
        assert index_problem(url, timeout=0.5) == f"{url} did not answer within 0.5 s"
        assert time.monotonic() - started < 5


def test_index_url_and_no_index_are_read_from_pips_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    assert pip_index() == "http://127.0.0.1:9/simple"
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    assert pip_index() is None


def test_offline_the_hook_tests_skip_at_once_when_the_index_is_unreachable() -> None:
    """This module in a child pytest whose pip index refuses connections: every hook test
    skips in seconds, saying why; under XMLNEST_REQUIRE_REAL=1 they fail as fast."""
    import socket
    import time

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        index = f"http://127.0.0.1:{closed.getsockname()[1]}/simple"
        for require in ("", "1"):
            env = {**_env(), "PIP_INDEX_URL": index, "XMLNEST_REQUIRE_REAL": require}
            started = time.monotonic()
            r = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-rsE",
                    "-p",
                    "no:cacheprovider",
                    "-k",
                    "not index",
                    str(Path(__file__)),
                ],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            took = time.monotonic() - started
            out = r.stdout
            assert (
                "needs the package index: pre-commit installs the hook's environment "
                f"from it; {index} did not answer" in out
            ), out[-3000:]
            assert took < 120, f"{took:.0f} s"
            if require:
                assert r.returncode == 1 and "forbids skipping" in out, out[-3000:]
                assert " 3 error" in out, out[-3000:]
            else:
                assert r.returncode == 0 and "3 skipped" in out, out[-3000:]


def test_the_documented_local_hook_runs_the_installed_xmlnest(tmp_path: Path) -> None:
    """docs/pre-commit.md's ``repo: local`` block (``language: system``), word for word:
    it runs the xmlnest on PATH, needs no package index, and fails on a domain that would
    change, showing the diff."""
    import re

    text = (REPO / "docs" / "pre-commit.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL) if "repo: local" in b]
    assert len(blocks) == 1, blocks
    repo = tmp_path / "user"
    repo.mkdir()
    _init_repo(repo)
    (repo / ".pre-commit-config.yaml").write_text(blocks[0])
    (repo / "needs.xml").write_bytes(SAMPLE.read_bytes())
    (repo / "pom.xml").write_bytes(b"<project/>\n")
    _commit_all(repo, "domains")
    bin_dir = str(Path(sys.executable).parent)  # where this checkout's xmlnest is installed
    env = _env(
        PRE_COMMIT_HOME=str(tmp_path / "home"), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    )
    r = subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files", "--color", "never"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "+++ b/needs.xml" in out and "+  <cpu mode='host-passthrough' check='partial'/>" in out
    assert "pom.xml" not in out  # not a domain: skipped, not named
    assert (repo / "needs.xml").read_bytes() == SAMPLE.read_bytes()
