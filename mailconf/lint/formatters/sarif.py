"""SARIF 2.1.0, for code scanning (GitHub's upload-sarif action): every rule, and every finding as a result."""

from __future__ import annotations

import json
from urllib.parse import quote

from mailconf import __version__
from mailconf.lint.core import Finding
from mailconf.lint.rules import all_rules

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def render(findings: list[Finding]) -> str:
    rules = all_rules()
    index = {rule.id: i for i, rule in enumerate(rules)}
    results = []
    for f in findings:
        physical: dict = {"artifactLocation": {"uri": quote(f.location.file)}}
        if f.location.line:
            physical["region"] = {"startLine": f.location.line}
        results.append(
            {
                "ruleId": f.rule,
                "ruleIndex": index[f.rule],
                "level": LEVELS[f.severity],
                "message": {"text": f"{f.message} (hint: {f.hint})" if f.hint else f.message},
                "locations": [{"physicalLocation": physical}],
            }
        )
    driver = {
        "name": "mailconf",
        "version": __version__,
        "rules": [
            {
                "id": rule.id,
                "name": rule.id,
                "shortDescription": {"text": rule.summary},
                "fullDescription": {"text": f"{rule.message}. Fix: {rule.hint}"},
                "defaultConfiguration": {"level": LEVELS[rule.severity]},
                "properties": {"program": rule.program, "relay": rule.relay},
            }
            for rule in rules
        ],
    }
    document = {"$schema": SCHEMA, "version": "2.1.0", "runs": [{"tool": {"driver": driver}, "results": results}]}
    return json.dumps(document, indent=2) + "\n"
