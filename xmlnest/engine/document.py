"""The hardened parse: a domain's bytes to a Source, and edited text back to bytes.

One parser for everything: no entity resolution, no network, no DTD loading, no huge
trees, CDATA kept. A DOCTYPE is refused before libxml2 sees the bytes, so entity bombs
and external entities never expand.
"""

from __future__ import annotations

import codecs
import re
import threading
from typing import NamedTuple

from lxml import etree

from xmlnest.engine.lossless.tree import find_declaration
from xmlnest.errors import InputError, NotADomain, XmlnestError

DEFAULT_MAX_BYTES = 16 * 1024 * 1024

_DECL_ENCODING = re.compile(rb"^<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._\-]+)[\"']")
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class Source(NamedTuple):
    """A parsed input: its exact bytes, their text and the lxml tree."""

    raw: bytes
    bom: bytes
    encoding: str  # Python codec name used to decode the body
    text: str
    root: etree._Element


_per_thread = threading.local()


def _parser() -> etree.XMLParser:
    """One parser per thread, reused: a parser is not for two threads at once, and making
    one per input cost ~3 µs (lxml shares a thread's name dictionary between parsers)."""
    parser: etree.XMLParser | None = getattr(_per_thread, "parser", None)
    if parser is None:
        parser = _per_thread.parser = _new_parser()
    return parser


def _new_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        strip_cdata=False,
        remove_blank_text=False,
        remove_comments=False,
        remove_pis=False,
        collect_ids=False,
    )


def _line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def decode(raw: bytes) -> tuple[bytes, str, str]:
    """Split off a BOM, find the encoding and decode strictly: ``(bom, codec, text)``."""
    bom = b""
    codec = "utf-8"
    for mark, name in _BOMS:
        if raw.startswith(mark):
            bom, codec = mark, name
            break
    body = raw[len(bom) :]
    if bom:
        _check_declaration_matches_bom(body, codec)
    else:
        if body[:2] in (b"<\x00", b"\x00<"):
            raise InputError(
                "UTF-16 without a byte-order mark is not supported",
                hint="save the file as UTF-8, or as UTF-16 with a BOM",
                line=1,
            )
        m = _DECL_ENCODING.match(body)
        if m:
            declared = m.group(1).decode("ascii")
            try:
                codec = codecs.lookup(declared).name
            except LookupError:
                raise InputError(
                    f"unknown encoding {declared!r} in the XML declaration",
                    hint="use UTF-8",
                    line=1,
                ) from None
            if not _supported(codec):
                raise InputError(
                    f"encoding {declared} is not supported",
                    hint="use UTF-8 (or UTF-16 with a BOM, or ISO-8859-1)",
                    line=1,
                )
            if codec.startswith(("utf-16", "utf-32")):
                raise InputError(
                    f"the declaration says {declared} but the file has no byte-order mark",
                    hint="declare the encoding the bytes are really in",
                    line=1,
                )
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise InputError(
            f"bytes are not valid {codec} (byte 0x{body[exc.start]:02x} at offset "
            f"{exc.start + len(bom)})",
            hint="fix the encoding, or declare the one the file is written in",
            line=line,
        ) from None
    if text.encode(codec) != body:
        raise InputError(
            f"encoding {codec} does not round-trip byte for byte",
            hint="save the file as UTF-8",
            line=1,
        )
    return bom, codec, text


def _supported(codec: str) -> bool:
    """ASCII-compatible single-byte or UTF encodings; not UTF-7 and friends, which can
    spell markup in bytes that look like text."""
    return codec in ("utf-8", "ascii", "cp1252") or codec.startswith(
        ("utf-16", "utf-32", "iso8859-")
    )


def _same_family(bom_codec: str, declared: str) -> bool:
    """A BOM's codec and a declared one agree (``UTF-16`` fits either byte order)."""
    if declared == bom_codec:
        return True
    return declared in ("utf-16", "utf-32") and bom_codec.startswith(declared + "-")


def _check_declaration_matches_bom(body: bytes, bom_codec: str) -> None:
    """Refuse a BOM whose encoding the XML declaration contradicts (XML 1.0, 4.3.3)."""
    try:
        head = body[:400].decode(bom_codec, errors="ignore")
    except LookupError:  # pragma: no cover - every BOM codec exists
        return
    m = _DECL_ENCODING.match(head.encode("ascii", errors="replace"))
    if not m:
        return
    declared = m.group(1).decode("ascii")
    try:
        name = codecs.lookup(declared).name
    except LookupError:
        name = declared.lower()
    if not _same_family(bom_codec, name):
        raise InputError(
            f"the declaration says {declared} but the byte-order mark says {bom_codec}",
            hint="make the declaration name the encoding the bytes are really in",
            line=1,
        )


def human_size(n: int) -> str:
    """``n`` bytes the way a person reads them: ``512 bytes``, ``20 MiB``, ``1.5 GiB``."""
    if n < 1024:
        return f"{n} byte" if n == 1 else f"{n} bytes"
    units = ("KiB", "MiB", "GiB", "TiB")
    value, i = n / 1024, 0
    while value >= 1024 and i < len(units) - 1:
        value, i = value / 1024, i + 1
    return f"{f'{value:.1f}'.removesuffix('.0')} {units[i]}"


def too_large(max_bytes: int, size: int | None) -> InputError:
    """The refusal of an input over the size limit. ``size`` is its real size; ``None``
    for a stream that was read only up to the limit (its size is not known)."""
    limit = f"the {max_bytes}-byte limit ({human_size(max_bytes)})"
    problem = (
        f"input is {size} bytes ({human_size(size)}), over {limit}"
        if size is not None
        else f"input is over {limit}: reading stopped there"
    )
    return InputError(problem, hint="raise it with --max-bytes if this really is a domain")


def parse(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Source:
    """Parse and check one input; raise :class:`InputError` with a line where possible."""
    if len(raw) > max_bytes:
        raise too_large(max_bytes, len(raw))  # all of it: readers stop at a limit themselves
    if not raw.strip():
        raise InputError(
            "input is empty",
            hint="give libvirt domain XML, e.g. from virsh dumpxml --inactive --security-info NAME",
        )
    bom, codec, text = decode(raw)
    nul = text.find("\x00")
    if nul >= 0:
        raise InputError(
            "input contains a NUL byte", hint="this is not XML text", line=_line_at(text, nul)
        )
    doctype = find_declaration(text)
    if doctype is not None:
        raise InputError(
            "a DOCTYPE is not allowed in domain XML (DTDs and entities are refused for safety)",
            hint="remove the <!DOCTYPE …> declaration",
            line=_line_at(text, doctype),
        )
    root = _lxml(raw)
    if not isinstance(root.tag, str):
        raise InputError("no root element", hint="give libvirt domain XML")
    # Split the tag by hand: etree.QName refuses some names libxml2 let through.
    namespace, _, localname = (
        root.tag[1:].rpartition("}")
        if root.tag[:1] == "{"
        else (
            "",
            "",
            root.tag,
        )
    )
    if localname != "domain" or namespace:
        what = f"<{localname}> in namespace {namespace}" if namespace else f"<{localname}>"
        raise NotADomain(
            f"root element is {what}, not a libvirt <domain>",
            hint="xmlnest edits domain XML (virsh dumpxml --inactive --security-info NAME); "
            "networks, pools and others are not domains",
            line=root.sourceline,
        )
    return Source(raw=raw, bom=bom, encoding=codec, text=text, root=root)


def _lxml(raw: bytes) -> etree._Element:
    try:
        return etree.fromstring(raw, _parser())
    except etree.XMLSyntaxError as exc:
        msg = (exc.msg or str(exc)).split(", line ")[0].strip()
        if msg.startswith("Excessive depth in document"):
            raise InputError(
                "elements nest too deeply (over 255 levels), refused for safety",
                hint="a libvirt domain is only a few levels deep; this is not domain XML",
                line=exc.lineno or None,
            ) from None
        raise InputError(
            f"not well-formed XML: {msg}", hint="fix the XML syntax", line=exc.lineno or None
        ) from None


def reparse(source: Source, output: bytes, text: str) -> Source:
    """The rendered ``output`` (``text`` encoded like ``source``) parsed again by lxml, the
    proof that what is written is well-formed. The text-level checks :func:`parse` made
    of the source (encoding, BOM, NUL, DOCTYPE) are not repeated: the output keeps the
    source's prolog and encoding, and lxml itself refuses a NUL."""
    try:
        root = _lxml(output)
    except InputError as exc:  # the input parsed: the rendering broke it
        raise XmlnestError(
            f"internal error: the rewritten XML is not well-formed ({exc.problem})",
            hint="nothing was written; please report this input",
        ) from None
    return Source(raw=output, bom=source.bom, encoding=source.encoding, text=text, root=root)


def encode(source: Source, text: str) -> bytes:
    """An edited ``source.text`` as bytes, in the source's own byte-order mark and encoding."""
    return source.bom + text.encode(source.encoding, errors="xmlcharrefreplace")
