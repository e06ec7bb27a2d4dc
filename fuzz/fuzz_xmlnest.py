"""Coverage-guided fuzz target for xmlnest's parse -> plan -> render -> verify pipeline.

Property, for any bytes and any target architecture:

* ``xmlnest.engine.core.process`` either returns or raises ``xmlnest.errors.XmlnestError``;
  any other exception (or a hang, or a RecursionError) is a crash;
* when it returns, processing its output again changes nothing (idempotence), and an
  unchanged outcome hands back exactly the input bytes.

Run with atheris (libFuzzer); see fuzz/README.md for the one command.
``python fuzz/fuzz_xmlnest.py --replay FILE|DIR...`` replays files through the same
property (no atheris needed). Without ``--replay`` the arguments are libFuzzer's: the
first folder named receives new corpus entries, so never name a folder you keep.

With ``XMLNEST_FUZZ_KEEP_GOING=1`` a crash is written to ``$XMLNEST_FUZZ_CRASH_DIR``
(default ``fuzz/crashes``), one file per distinct exception site, and fuzzing goes on.
"""

from __future__ import annotations

import hashlib
import os
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

atheris = None
if __name__ == "__main__" and sys.argv[1:2] != ["--replay"]:  # fuzzing: instrument xmlnest
    try:
        import atheris
    except ImportError:  # replay mode only
        atheris = None

if atheris is not None:
    with atheris.instrument_imports(include=["xmlnest"]):
        from xmlnest.engine import core
        from xmlnest.errors import XmlnestError
        from xmlnest.model import HostFacts, Options, Vendor
else:  # imported by the tests, or replaying without atheris
    from xmlnest.engine import core
    from xmlnest.errors import XmlnestError
    from xmlnest.model import HostFacts, Options, Vendor

TARGETS = ("auto", "intel", "amd", "power9", "ibmz")
VENDORS: tuple[Vendor | None, ...] = (None, "intel", "amd")
MAX_BYTES = 1 << 20
# While fuzzing, also keep inputs that hit the pipeline's own "internal error" refusals.
SOFT = atheris is not None and bool(os.environ.get("XMLNEST_FUZZ_KEEP_GOING"))


class PropertyViolation(AssertionError):
    """The output of a successful run is not a fixed point."""


def check(data: bytes) -> None:
    """Raise anything but XmlnestError only when the property is broken."""
    for i, target in enumerate(TARGETS):
        vendor = VENDORS[(len(data) + i) % len(VENDORS)]
        options = Options(arch=target, passthrough=bool(len(data) & 8) and i == 1)
        try:
            out = core.process(data, options, host=HostFacts(vendor=vendor), max_bytes=MAX_BYTES)
        except XmlnestError as exc:
            if SOFT and exc.problem.startswith("internal error"):
                raise  # a refusal, so within the property, but a bug worth a look
            continue
        if not out.changed and out.output is not data and out.output != data:
            raise PropertyViolation(f"{target}: unchanged outcome but different bytes")
        try:
            again = core.process(
                out.output, options, host=HostFacts(vendor=vendor), max_bytes=MAX_BYTES * 2
            )
        except XmlnestError as exc:
            msg = f"{target}: output refused on a second run: {exc.format()}"
            raise PropertyViolation(msg) from exc
        if again.changed:
            raise PropertyViolation(f"{target}: second run changed the output again")


_seen: set[str] = set()


def _site(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    last = tb[-1] if tb else None
    where = f"{Path(last.filename).name}:{last.lineno}" if last else "?"
    return f"{type(exc).__name__}@{where}"


def _record(kind: str, site: str, data: bytes, report: str) -> None:
    if site in _seen:
        return
    _seen.add(site)
    crash_dir = Path(os.environ.get("XMLNEST_FUZZ_CRASH_DIR", HERE / "crashes"))
    crash_dir.mkdir(parents=True, exist_ok=True)
    slug = site.replace(":", "_").replace("@", "-").replace(" ", "_")[:80]
    name = f"{kind}-{slug}-{hashlib.sha1(data).hexdigest()[:12]}"
    (crash_dir / name).write_bytes(data)
    (crash_dir / (name + ".txt")).write_text(report, encoding="utf-8")
    print(f"\n[xmlnest-fuzz] new {kind} {site} -> {crash_dir / name}", file=sys.stderr)


def test_one_input(data: bytes) -> None:
    try:
        check(data)
    except XmlnestError as exc:  # only "internal error" refusals get here (see check)
        _record("internal", exc.problem, data, exc.format())
    except Exception as exc:  # noqa: BLE001 - any non-XmlnestError is a finding
        if not os.environ.get("XMLNEST_FUZZ_KEEP_GOING"):
            raise
        _record("crash", _site(exc), data, "".join(traceback.format_exception(exc)))


def replay(paths: list[str]) -> int:
    """Check each file (folders: every file below) against the property; 1 if any crashed."""
    failed = 0
    for arg in paths:
        root = Path(arg)
        for f in sorted(root.rglob("*")) if root.is_dir() else [root]:
            if not f.is_file():
                continue
            try:
                check(f.read_bytes())
            except Exception:  # noqa: BLE001
                failed += 1
                print(f"{f}: CRASH\n{traceback.format_exc()}", file=sys.stderr)
    return 1 if failed else 0


def main() -> None:
    if sys.argv[1:2] == ["--replay"]:
        sys.exit(replay(sys.argv[2:]))
    if atheris is None:
        sys.exit("atheris is not installed (pip install atheris); or use --replay FILE...")
    sys.setrecursionlimit(1000)  # the default: a deep-tree RecursionError must show up
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
