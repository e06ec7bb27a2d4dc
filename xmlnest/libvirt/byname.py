"""libvirt domains by name, for ``xmlnest.api`` and the CLI alike: connect, convert each
stored definition (and define it back, guarded as ``-i``), and the ``--status`` verdicts.

The CLI's ``--domain``/``--all-domains``/``-i``/``--status`` and the Ansible collection
run through these functions, so the two cannot drift. (No ``dataclasses`` here: the CLI's
by-name start-up stays light, tests/test_domains_cli.py.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Literal, NamedTuple

from xmlnest.arguments import (
    checked_options,
    compiled,
    ignored_rules,
    reworded,
    reworded_finding,
)
from xmlnest.convert import Converter, Outcome
from xmlnest.engine.document import DEFAULT_MAX_BYTES
from xmlnest.engine.plan import Finding, Level
from xmlnest.errors import LibvirtError, UsageError, XmlnestError
from xmlnest.model import Options, Vendor

if TYPE_CHECKING:
    from xmlnest.engine.validate import Choice
    from xmlnest.libvirt.connection import Connection, DomainRead, Feature
    from xmlnest.libvirt.source import DomainSource
    from xmlnest.libvirt.status import StatusRow

Wording = Literal["api", "cli"]


def connect(uri: str | None = None, *, backend: str | None = None) -> Connection:
    """One libvirt connection (``uri=None``: libvirt's default). ``backend``: ``python``
    (libvirt-python), ``virsh`` or ``None`` (``$XMLNEST_LIBVIRT_BACKEND``, else
    libvirt-python when it imports, else virsh). Raises ``LibvirtError``; close it (or use
    it as a context manager) when done."""
    from xmlnest.libvirt.connection import connect as open_connection

    try:
        return open_connection(uri, backend=backend)
    except ValueError as exc:  # an unknown backend name
        raise UsageError(str(exc)) from None


def domain_names(conn: Connection) -> list[str]:
    """Every persistent domain's name on ``conn``, sorted."""
    return conn.persistent_names()


class DomainResult(NamedTuple):
    """One libvirt domain converted (and, with ``define=True``, defined back).

    ``status`` is the ``--json`` word: ``changed``, ``unchanged``, ``skipped`` (with
    ``skip_unsupported``: it cannot nest by its type or arch) or ``rejected`` (``changed``
    without ``define`` means "would change"). ``before`` is the stored
    definition as read (``--inactive --security-info``; empty when it could not be read),
    ``after`` what was (or would be) defined, byte for byte. ``error``: why a rejected
    domain was refused (``None`` when ``strict`` turned its warnings, in ``errors``, into
    the refusal). ``restart_required``: a running domain whose new definition takes effect
    only after a full power-off (with ``define=False``: would)."""

    name: str
    status: Literal["changed", "unchanged", "skipped", "rejected"]
    before: bytes = b""
    after: bytes = b""
    findings: tuple[Finding, ...] = ()  # warnings and notes, the ignored ones left out
    errors: tuple[Finding, ...] = ()  # why it was rejected, as findings of level error
    error: XmlnestError | None = None
    running: bool = False
    defined: bool = False
    restart_required: bool = False
    validated_with: str | None = None  # the schema that checked the output, if one did
    found: bool = True  # False: the name is unknown or transient, nothing was read
    notes: tuple[str, ...] = ()  # what defining it left to say (a restart pending)
    outcome: Outcome | None = None  # the engine's, for a caller that renders a diff

    @property
    def changed(self) -> bool:
        return self.status == "changed"


def convert_domains(
    conn: Connection,
    names: Sequence[str] | None = None,
    *,
    arch: str = "auto",
    model: str | None = None,
    passthrough: bool = False,
    level: str = "l1",
    disable: bool = False,
    host_model: bool = False,
    windows: bool = False,
    validate: str = "auto",
    schema_dir: str | None = None,
    strict: bool = False,
    ignore: Iterable[str] = (),
    define: bool = False,
    skip_unsupported: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    wording: Wording = "api",
    validation: Choice | None = None,
    restarts: bool = True,
    options: Options | None = None,
) -> Iterator[DomainResult]:
    """Convert the named domains' stored definitions (``None``: every persistent domain),
    one result each: first the names that are unknown or transient (rejected), then the
    others in order. Nothing is ever read from the running definition.

    ``define=True`` defines each changed one back, as ``xmlnest -i`` does: libvirt
    validates it, nothing is defined when the stored definition changed since it was read
    (read again just before), and the definition libvirt keeps is read back and must hold
    the edit. ``strict``: warnings refuse a domain; ``ignore``: warning and note rule ids
    to leave out; ``windows``: ready each L1 for the Windows hypervisor too, as
    :func:`xmlnest.transform`; ``skip_unsupported``: a domain that cannot nest by its type or arch
    (XN101, XN102, XN109) is ``skipped``, not refused. Without ``define``, each definition
    is read while the one before is worked on (virsh: one command ahead).
    ``wording="cli"``: hints name the CLI's flags; ``validation``: a schema already chosen
    (the CLI's run configuration), instead of ``validate`` and ``schema_dir``; ``options``:
    options already made (the CLI's), instead of ``arch`` to ``windows``.
    ``restarts=False``: without ``define``, do not ask running domains whether a restart
    would be pending (it costs one more read of each changed running domain).
    """
    from xmlnest.libvirt.source import DomainSource

    if options is None:
        options = checked_options(
            arch,
            model,
            passthrough,
            level,
            disable=disable,
            host_model=host_model,
            windows=windows,
            schema_dir=schema_dir,
        )
    ignored = ignored_rules(ignore, wording)
    if validation is not None:
        validator = validation.make_validator()
    else:
        validator = compiled(validate, schema_dir)
    wanted = conn.persistent_names() if names is None else list(names)
    source = DomainSource(conn, read_ahead=not define)
    found = []
    for item in source.inputs(wanted):
        if isinstance(item, XmlnestError):
            refused = _refused(getattr(item, "domain", None) or item.path or "", item)
            yield _worded(refused._replace(found=False), wording)
        else:
            found.append(item)
    converter = Converter(options, validator=validator, lookup=source, max_bytes=max_bytes)
    for item in found:
        assert item.domain is not None
        result = _convert_domain(
            source,
            item.domain,
            converter,
            strict,
            ignored,
            define,
            skip_unsupported,
            restarts,
        )
        yield _worded(result, wording)


def _convert_domain(
    source: DomainSource,
    name: str,
    converter: Converter,
    strict: bool,
    ignored: frozenset[str],
    define: bool,
    skip_unsupported: bool = False,
    restarts: bool = True,
) -> DomainResult:
    from xmlnest.engine.transforms import CANNOT_NEST
    from xmlnest.errors import RuleError
    from xmlnest.files import Input

    item = Input(name, None, domain=name)
    before = b""
    try:
        before = source.read(item)
        outcome = converter.process(before)
    except RuleError as exc:
        if skip_unsupported and exc.rule in CANNOT_NEST:
            reason = Finding(exc.rule or "", exc.problem, exc.hint, exc.line, Level.INFO)
            return DomainResult(name, "skipped", before, before, (reason,))
        return _refused(name, exc, before)
    except XmlnestError as exc:
        return _refused(name, exc, before)
    validator = converter.validator
    used = validator.name if validator is not None and not outcome.plan.empty else None
    findings = tuple(f for f in outcome.findings if f.rule not in ignored)
    warnings = tuple(f for f in findings if f.level is Level.WARNING)
    running = source.running(item)
    if strict and warnings:
        errors = tuple(f._replace(level=Level.ERROR) for f in warnings)
        return DomainResult(
            name, "rejected", before, before, errors=errors, running=running, validated_with=used
        )
    defined = False
    pending = False
    notes: tuple[str, ...] = ()
    if outcome.changed and define:
        try:
            done = source.define(item, before, outcome.output, converter)
        except XmlnestError as exc:
            return _refused(name, exc, before, used)
        defined, pending, notes = True, done.restart_pending, done.notes
    elif outcome.changed and restarts:
        pending = source.would_wait(item, converter.options)
    return DomainResult(
        name,
        "changed" if outcome.changed else "unchanged",
        before,
        outcome.output,
        findings,
        running=running,
        defined=defined,
        restart_required=pending,
        validated_with=used,
        notes=notes,
        outcome=outcome,
    )


def _refused(
    name: str, exc: XmlnestError, before: bytes = b"", used: str | None = None
) -> DomainResult:
    error = Finding(exc.rule or "", exc.problem, exc.hint, exc.line, Level.ERROR)
    return DomainResult(
        name, "rejected", before, before, errors=(error,), error=exc, validated_with=used
    )


def _worded(result: DomainResult, wording: Wording) -> DomainResult:
    if wording == "cli":
        return result
    if result.error is not None:
        reworded(result.error)
    return result._replace(
        findings=tuple(map(reworded_finding, result.findings)),
        errors=tuple(map(reworded_finding, result.errors)),
    )


def domain_status(
    conn: Connection,
    names: Sequence[str] | None = None,
    *,
    arch: str = "auto",
    model: str | None = None,
    passthrough: bool = False,
    level: str = "l1",
    host_model: bool = False,
    disable: bool = False,
) -> Iterator[StatusRow | LibvirtError]:
    """Each named domain's (``None``: every persistent one's) nesting verdict, stored and
    running, as ``xmlnest --status`` shows it; a domain that cannot be read or judged as
    its ``LibvirtError``. Reads only. ``disable``: judged as ``state: disabled`` would
    leave them (stored ``not nested`` is the goal)."""
    options = checked_options(
        arch, model, passthrough, level, host_model=host_model, disable=disable
    )
    wanted = conn.persistent_names() if names is None else list(names)
    return status_rows(conn, wanted, options)


def status_rows(
    conn: Connection, names: Sequence[str], options: Options, *, skip_unsupported: bool = False
) -> Iterator[StatusRow | LibvirtError]:
    """:func:`domain_status` for options already checked (the CLI's ``--status``);
    ``skip_unsupported``: a domain that cannot nest by its type or arch is ``skipped``."""
    seen: _Expanded = {}
    # The stored verdict needs the vendor of the host behind conn, not what it offers.
    converter = Converter(options, lookup=_VendorOf(conn))
    for read in conn.read_domains(names):
        if isinstance(read, LibvirtError):
            yield read
            continue
        try:
            yield _status_row(conn, read, converter, seen, skip_unsupported)
        except LibvirtError as exc:
            yield exc


_Expanded = dict[tuple[str, str, str], "frozenset[Feature] | None"]  # noqa: UP037


def _expanded(
    conn: Connection, seen: _Expanded, cpu: str, arch: str, virttype: str
) -> frozenset[Feature] | None:
    """The live CPU's features, expanded by the hypervisor: asked once per distinct CPU
    in a run (a fleet's domains mostly share a few), not once per domain."""
    key = (cpu, arch, virttype)
    if key not in seen:
        if len(seen) >= 256:  # many distinct CPUs: keep memory flat
            seen.clear()
        seen[key] = conn.cpu_features(cpu, arch, virttype)
    return seen[key]


class _VendorOf:
    """The host behind ``conn`` as a lookup that knows only its vendor (the status verdict
    compares no host offer: no URI, so none is asked for)."""

    uri: str | None = None
    vendor_is_the_domains = True

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def vendor(self) -> Vendor | None:
        return self.conn.host_vendor()

    def offered(self, arch: str) -> frozenset[str] | None:
        return None

    def hyperv(self, arch: str) -> frozenset[str] | None:
        return None


def _status_row(
    conn: Connection,
    read: DomainRead,
    converter: Converter,
    seen: _Expanded,
    skip_unsupported: bool,
) -> StatusRow:
    from xmlnest.engine import document
    from xmlnest.engine.transforms import CANNOT_NEST, FAMILY_OF_ARCH
    from xmlnest.errors import RuleError
    from xmlnest.libvirt import status

    dom, raw, live = read
    try:
        outcome = converter.process(raw)
        arch = status.arch_of(outcome.source.root)
        stored = status.stored_verdict(
            changed=outcome.changed,
            disable=converter.options.disable,
            host_setting=any(f.rule == "XN221" for f in outcome.findings),
        )
    except RuleError as exc:
        arch = _arch_of(raw)  # a refusal still names the arch (parsed again only then)
        rule = exc.rule or "input"
        if skip_unsupported and rule in CANNOT_NEST:
            stored = status.stored_verdict(changed=False, skipped=rule)
        else:
            stored = status.stored_verdict(changed=False, refused=rule)
    except XmlnestError:
        arch = _arch_of(raw)
        stored = status.stored_verdict(changed=False, refused="input")
    running = None
    if live is not None:
        root = document.parse(live).root
        cpu = status.cpu_to_expand(root)
        live_arch = status.arch_of(root)
        kind = root.get("type") or "kvm"
        features = _expanded(conn, seen, cpu, live_arch, kind) if cpu else None
        x86 = FAMILY_OF_ARCH.get(live_arch) == "x86"
        host = conn.host_model_features(live_arch) if x86 else None
        running = status.running_verdict(
            root, host_vendor=conn.host_vendor(), host_features=host, cpu_features=features
        )
    return status.row(dom.name, arch, dom.state, stored, running)


def _arch_of(raw: bytes) -> str:
    """The stored definition's arch, or '' when it does not even parse."""
    from xmlnest.engine import document
    from xmlnest.libvirt import status

    try:
        return status.arch_of(document.parse(raw).root)
    except XmlnestError:
        return ""
