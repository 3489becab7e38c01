"""Machine-readable: a JSON list of findings."""

from __future__ import annotations

import json

from mailconf.lint.core import Finding


def rows(findings: list[Finding]) -> list[dict[str, object]]:
    """The findings as JSON-ready dicts (also the "static" part of `check-relay --probe --format json`)."""
    return [
        {
            "file": f.location.file,
            "line": f.location.line,
            "rule": f.rule,
            "severity": f.severity,
            "message": f.message,
            "hint": f.hint,
            "relay": f.relay,
        }
        for f in findings
    ]


def render(findings: list[Finding]) -> str:
    return json.dumps(rows(findings), indent=2) + "\n"
