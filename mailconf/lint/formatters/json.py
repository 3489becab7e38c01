"""Machine-readable: a JSON list of findings."""

from __future__ import annotations

import json

from mailconf.lint.core import Finding


def render(findings: list[Finding]) -> str:
    rows = [
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
    return json.dumps(rows, indent=2) + "\n"
