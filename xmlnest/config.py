"""One run's configuration, computed once from the options and never changed after."""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from xmlnest.document import DEFAULT_MAX_BYTES
from xmlnest.transforms.common import Options


class Output(Enum):
    """Where a run's results go (black's ``WriteBack``): computed once from the flags."""

    STDOUT = "stdout"  # the converted XML of one input
    CHECK = "check"  # nothing written; exit 1 if anything would change
    DIFF = "diff"  # nothing written; a diff of what would change
    IN_PLACE = "in place"  # changed files rewritten atomically
    OUTPUT_DIR = "output dir"  # converted copies under a folder

    @property
    def writes(self) -> bool:
        """Whether the run writes the results (its summary says "changed", not "would")."""
        return self in (Output.STDOUT, Output.IN_PLACE, Output.OUTPUT_DIR)


class RunConfig(NamedTuple):
    """Everything one run needs; immutable, hashable and picklable, so ``--jobs`` workers
    get it as is and keep per-process state (the compiled schema) keyed by it. (A
    NamedTuple, not a frozen dataclass: ``dataclasses`` costs the pipe ~3 ms to import.)"""

    options: Options = Options()
    output: Output = Output.STDOUT
    diff: str | None = None  # None, "unified" or "json": printed besides the output mode
    output_dir: str | None = None
    paths: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    validate_kind: str = "auto"
    schema_dir: str | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    strict: bool = False
    ignore: frozenset[str] = frozenset()
    host_root: str = "/"
    skip_non_domain: bool = False
    jobs: int = 0
    quiet: bool = False
    verbose: bool = False
    as_json: bool = False
    connect: str | None = None  # libvirt URI (None: libvirt's default)
    domains: tuple[str, ...] = ()  # --domain NAME...
    all_domains: bool = False

    @property
    def libvirt(self) -> bool:
        """Inputs are libvirt domains, read and defined through a connection."""
        return self.connect is not None or bool(self.domains) or self.all_domains

    @property
    def check(self) -> bool:
        """``--check``: the verdict is the point; a change makes the exit code 1."""
        return self.output is Output.CHECK
