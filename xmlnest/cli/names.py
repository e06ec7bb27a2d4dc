"""``--domains-from FILE`` (``-`` for stdin) and ``--where KEY=VALUE``: domain names from a file.

A file is either one name per line (blank lines and ``#`` comments skipped), or JSON Lines
as ``--status --json`` prints them (a ``name`` key) and ``--json`` runs print them (a
``path`` key: the domain's name); the host and summary records of ``--status --json``
(a ``record`` key) are skipped. ``--where`` keeps the JSON records whose KEY has VALUE
(``true``, ``false`` and ``null`` as JSON spells them), so the domains that were nested
before a kill switch are ``--domains-from before.jsonl --where stored=nested``.
"""

from __future__ import annotations

import sys

from xmlnest.errors import UsageError
from xmlnest.files.inputs import STDIN, STDIN_NAME


def _where(conditions: tuple[str, ...]) -> list[tuple[str, str]]:
    pairs = []
    for condition in conditions:
        key, sep, value = condition.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--where {condition}: not KEY=VALUE; e.g. --where stored=nested")
        pairs.append((key.strip(), value.strip()))
    return pairs


def _spelled(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def names_from(text: str, where: tuple[str, ...] = (), path: str = STDIN) -> tuple[str, ...]:
    """The domain names ``text`` lists, in order, each once; raise ``UsageError``."""
    shown = STDIN_NAME if path == STDIN else path
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)]
    lines = [(n, line) for n, line in lines if line and not line.startswith("#")]
    conditions = _where(where)
    if lines and lines[0][1].startswith("{"):
        names = _json_names(lines, conditions, shown)
    elif conditions:
        raise UsageError(
            f"{shown}: --where needs JSON Lines (xmlnest --status --json prints them); "
            "this file lists plain names"
        )
    else:
        names = [line for _, line in lines]
    return tuple(dict.fromkeys(names))


def _json_names(
    lines: list[tuple[int, str]], conditions: list[tuple[str, str]], shown: str
) -> list[str]:
    import json

    names: list[str] = []
    for n, line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"{shown}:{n}: not a JSON object ({exc.msg}); give one JSON object per line "
                "or one name per line"
            ) from None
        if not isinstance(record, dict):
            raise UsageError(f"{shown}:{n}: not a JSON object; give one JSON object per line")
        if "record" in record:
            continue  # --status --json's host and summary records
        name = record.get("name", record.get("path"))
        if not isinstance(name, str) or not name:
            raise UsageError(
                f"{shown}:{n}: no 'name' (or 'path') key; use the output of xmlnest "
                "--status --json or --json"
            )
        if any(_spelled(record.get(key)) != value for key, value in conditions):
            continue
        names.append(name)
    return names


def read_names(path: str, where: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The names in the file at ``path`` (``-``: stdin)."""
    if path == STDIN:
        return names_from(sys.stdin.read(), where, path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise UsageError(f"--domains-from {path}: {exc.strerror}; give a readable file") from None
    except UnicodeDecodeError:
        raise UsageError(
            f"--domains-from {path}: not UTF-8 text; give names or JSON Lines"
        ) from None
    return names_from(text, where, path)
