"""Where a kernel module's parameter is set for its next load: modprobe.d, the kernel command line.

Read like kmod reads them (its directory order, ``\\`` continuations, ``-`` and ``_``
alike in names), through ``host_probe``'s readers; never decides, never writes.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from xmlnest.hostcheck.probe import read_text, under

MODPROBE_DIRS = (  # kmod's search order; the first file of a given name wins
    "/etc/modprobe.d",
    "/run/modprobe.d",
    "/usr/local/lib/modprobe.d",
    "/usr/lib/modprobe.d",
    "/lib/modprobe.d",
)


@dataclass(frozen=True)
class Setting:
    """Where a module parameter is set for the next load, and to what."""

    source: str  # a modprobe.d file, or "/proc/cmdline"
    text: str  # the words as written, e.g. "options kvm_intel nested=1" or "kvm-intel.nested=1"
    value: str


def module_name(name: str) -> str:
    return name.replace("-", "_")


def _config_files(root: Path) -> list[PurePosixPath]:
    """``*.conf`` files in kmod's order: sorted by name, first directory wins a name."""
    chosen: dict[str, PurePosixPath] = {}
    for directory in MODPROBE_DIRS:
        try:
            entries = sorted(under(root, directory).iterdir())
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if name.endswith(".conf") and not name.startswith(".") and name not in chosen:
                chosen[name] = PurePosixPath(directory, name)
    return [chosen[name] for name in sorted(chosen)]


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    if pending:
        lines.append(pending)
    return lines


def config_setting(root: Path, module: str, param: str) -> Setting | None:
    """The last ``options <module> <param>=`` kmod would apply from modprobe.d."""
    setting: Setting | None = None
    for host_file in _config_files(root):
        text = read_text(under(root, host_file))
        if text is None:
            continue
        for line in _logical_lines(text):
            words = line.split()
            if len(words) < 3 or words[0] != "options" or module_name(words[1]) != module:
                continue
            for word in words[2:]:
                key, sep, value = word.partition("=")
                if sep and key == param:
                    setting = Setting(str(host_file), " ".join(words), value.strip("\"'"))
    return setting


def cmdline_setting(root: Path, module: str, param: str) -> Setting | None:
    """The last ``<module>.<param>=`` on the kernel command line (before ``--``).

    kmod reads these after modprobe.d, so for a loadable module they win; for a built-in
    module they are the only source.
    """
    text = read_text(under(root, "/proc/cmdline"))
    if text is None:
        return None
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    setting: Setting | None = None
    for word in words:
        if word == "--":
            break
        key, sep, value = word.partition("=")
        mod, dot, name = key.partition(".")
        if sep and dot and module_name(mod) == module and module_name(name) == param:
            setting = Setting("/proc/cmdline", word, value)
    return setting
