"""Render a ``HostReport`` as text for people or as JSON for scripts; pure functions.

The JSON is ``dataclasses.asdict`` of the report plus ``exit_code``, keys sorted, so its
keys are the field names of ``hostcheck.report`` (documented in docs/host-check.md).
"""

from __future__ import annotations

import dataclasses
import json
import re
import textwrap

from xmlnest.hostcheck.report import (
    EXIT_ACTION_NEEDED,
    EXIT_READY,
    EXIT_UNSUPPORTED,
    DevKvm,
    HostReport,
)

_PAD = " " * 16


def _status(report: HostReport) -> str:
    code = report.exit_code
    if code == EXIT_READY:
        return "ready: L2 guests can run" + (", slowly (see Speed)" if report.slow else "")
    if code == EXIT_UNSUPPORTED:
        return "not supported"
    assert code == EXIT_ACTION_NEEDED
    urgent = [item for item in report.security if item.level == "action needed"]
    if report.firmware is not None and report.firmware.state == "disabled":
        why = "virtualization is disabled by the firmware"
    elif urgent:
        why = urgent[0].message + " (see Security)"
    elif report.dev_kvm.problem is not None and report.module_loaded:
        why = f"{report.dev_kvm.path} is {report.dev_kvm.problem}"
    elif report.place.kind == "vm":
        why = f"{report.module} is not loaded in this VM"
    elif report.enabled:
        why = "supported and enabled, but hpage=1 is in the way"
    else:
        why = "supported but not enabled"
    return f"action needed: {why}"


def _nested_line(report: HostReport) -> str:
    if report.nested_value is None:
        why = "not loaded" if not report.module_loaded else "has no nested parameter"
        return f"{report.nested_param_path}: missing ({report.module} {why})"
    state = "enabled" if report.enabled else "NOT enabled"
    return f"{report.nested_param_path} = {report.nested_value} ({state})"


def _persistent_line(report: HostReport) -> str:
    sources = []
    if report.persistent_config_file:
        sources.append(f"nested=1 set in {report.persistent_config_file}")
    if report.persistent_cmdline:
        sources.append(f"{report.persistent_cmdline} on the kernel command line")
    return "; ".join(sources) or "not set in modprobe.d or on the kernel command line"


def _dev_kvm_lines(dev: DevKvm) -> list[str]:
    if not dev.present:
        head = "missing" + (f" ({dev.served_by} is loaded)" if dev.served_by else "")
    else:
        kind = f"character device {dev.rdev}" if dev.char_device else "NOT a character device"
        head = f"{kind}, {dev.owner}:{dev.group} {dev.mode}"
        if dev.served_by:
            head += f", served by {dev.served_by}"
    lines = [f"  /dev/kvm:     {head}"]
    for access in dev.access:
        said = "read-write" if access.ok else "NO read-write access"
        lines.append(f"{_PAD}{access.role} {access.user}: {said}")
    if dev.served_by_note:
        lines.append(f"{_PAD}{dev.served_by_note}")
    return lines


def _speed_lines(report: HostReport) -> list[str]:
    if not report.speed:
        return []
    values = " ".join(f"{p.param}={p.value if p.value is not None else '?'}" for p in report.speed)
    lines = [f"  Speed:        {values}" + (" (slow)" if report.slow else "")]
    lines += [f"{_PAD}{p.advice}" for p in report.speed if p.advice]
    return lines


def _facts_lines(report: HostReport) -> list[str]:
    place = report.place
    where = {"bare-metal": "bare metal", "vm": "VM", "unknown": "unknown"}[place.kind]
    if place.level:
        where += f" ({place.level})"
    if place.evidence:
        where += ": " + "; ".join(place.evidence)
    arch = report.arch.value + (f" ({report.vendor})" if report.vendor else "")
    support = "supported" if report.supported else "NOT supported"
    if report.firmware is not None and report.firmware.state == "disabled" and not report.supported:
        support = "disabled by the firmware"
    lines = ["Host check for nested virtualization", f"  Where:        {where}"]
    lines.append(f"{_PAD}{place.view}")
    if report.os.pretty_name:
        lines.append(f"  OS:           {report.os.pretty_name}")
    lines += [
        f"  CPU:          {report.cpu_model or 'unknown'}",
        f"  Architecture: {arch}",
        f"  Support:      {support}: {report.support_reason}",
    ]
    if report.firmware is not None:
        fw = report.firmware
        said = f"{fw.source}: {fw.detail}" if fw.source else fw.detail
        lines.append(f"  Firmware:     {fw.state} ({said})")
    if report.module is not None:
        lines.append(f"  Module:       {report.module}")
        lines.append(f"  Nested:       {_nested_line(report)}")
    if report.hpage is not None:
        lines.append(f"  Huge pages:   hpage={'1' if report.hpage else '0'}")
    if report.supported and report.place.kind != "vm":
        lines.append(f"  Persistent:   {_persistent_line(report)}")
    return lines + _dev_kvm_lines(report.dev_kvm) + _speed_lines(report) + _security_lines(report)


def _security_lines(report: HostReport) -> list[str]:
    if not report.security:
        arch = report.arch.value
        return [f"  Security:     no nesting advisory xmlnest knows of applies to {arch} hosts"]
    lines: list[str] = []
    for item in report.security:
        kernel = item.kernel
        head = {"ok": "patched", "note": kernel.state, "action needed": "ACTION NEEDED"}
        lines.append(f"  Security:     {head[item.level]}: {item.message}")
        if item.level != "ok":
            lines.append(f"{_PAD}{kernel.reason}")
            sources = "sources: " + ", ".join(short_source(s) for s in kernel.sources)
            lines += textwrap.wrap(sources, 100, initial_indent=_PAD, subsequent_indent=_PAD)
    return lines


def short_source(url: str) -> str:
    """``https://github.com/o/r/pull/61`` -> ``o/r#61``; an oss-security post by its date."""
    github = re.match(r"https://github\.com/([^/]+/[^/]+)/(?:pull|issues)/(\d+)$", url)
    if github:
        return f"{github.group(1)}#{github.group(2)}"
    oss = re.match(r"https://www\.openwall\.com/lists/oss-security/(\d+)/(\d+)/(\d+)/(\d+)$", url)
    if oss:
        return f"oss-security {oss.group(1)}-{oss.group(2)}-{oss.group(3)} #{oss.group(4)}"
    return url


def _security_steps(report: HostReport) -> list[str]:
    lines: list[str] = []
    for item in report.security:
        if item.level != "action needed":
            continue
        lines += ["", f"To close {' and '.join(item.kernel.cves)} (as root), either:"]
        if item.upgrade:
            lines.append(f"  - {item.upgrade}, or")
        caution = f" {item.off_caution}" if item.off_caution else ""
        lines.append(f"  - turn nesting off until then.{caution}")
        lines += [f"      {command}" for command in item.off_now]
        if item.off_keep:
            lines += textwrap.wrap(
                f"To keep it off after a reboot: {item.off_keep}.",
                100,
                initial_indent="    ",
                subsequent_indent="    ",
            )
    return lines


def _enable_lines(report: HostReport) -> list[str]:
    lines: list[str] = []
    if report.enable_now:
        lines += ["", "To enable nesting now (as root):"]
        for item in report.security:
            if item.kernel.vulnerable:
                fix = f" to {item.kernel.fixed_in} or later" if item.kernel.fixed_in else ""
                lines.append(
                    f"  First upgrade the kernel{fix}: it has {' and '.join(item.kernel.cves)}."
                )
        if report.enable_caution:
            lines.append(f"  {report.enable_caution}")
        lines += [f"    {command}" for command in report.enable_now]
    if report.supported and report.enable_permanent_line and not report.enabled:
        lines.append("")
        if report.persistent_config_file or report.persistent_cmdline:
            where = report.persistent_config_file or "the kernel command line"
            line = report.enable_permanent_line
            if not report.persistent_config_file:
                line = report.persistent_cmdline or line
            lines += [
                f"Already permanent: {where} contains",
                f"    {line}",
                "  so a reboot (or the module reload above) is all that is needed.",
            ]
        else:
            lines += [
                "To keep it enabled after a reboot, add this line to /etc/modprobe.d/kvm.conf:",
                f"    {report.enable_permanent_line}",
            ]
    if report.dev_kvm.fix:
        lines += ["", f"To fix {report.dev_kvm.path} (as root):"]
        lines += [f"    {step}" for step in report.dev_kvm.fix]
    return lines


def render_text(report: HostReport) -> str:
    """Human-readable report: facts, commands to run, notes, status; ends with a newline."""
    lines = _facts_lines(report) + _security_steps(report) + _enable_lines(report)
    if report.notes:
        lines += ["", "Notes:"] + [f"  - {note}" for note in report.notes]
    lines += ["", f"Status: {_status(report)} (exit {report.exit_code})"]
    return "\n".join(lines) + "\n"


def report_dict(report: HostReport) -> dict[str, object]:
    """Field names plus ``exit_code``; tuples become lists, ``arch`` its string value."""
    data: dict[str, object] = json.loads(json.dumps(dataclasses.asdict(report)))
    data["arch"] = report.arch.value
    data["exit_code"] = report.exit_code
    return data


def render_json(report: HostReport) -> str:
    """The report as sorted, indented JSON ending with a newline."""
    return json.dumps(report_dict(report), sort_keys=True, indent=2) + "\n"
