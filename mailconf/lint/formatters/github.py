"""GitHub Actions workflow commands: `::error file=F,line=L,title=ID::message` annotate the changed lines."""

from __future__ import annotations

from mailconf.lint.core import Finding

LEVELS = {"error": "error", "warning": "warning", "info": "notice"}


def escape(text: str, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_value else text


def render(findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        where = f"file={escape(f.location.file, True)}"
        if f.location.line:
            where += f",line={f.location.line}"
        message = f"{f.message} (hint: {f.hint})" if f.hint else f.message
        lines.append(f"::{LEVELS[f.severity]} {where},title={f.rule}::{escape(message)}")
    return "".join(line + "\n" for line in lines)
