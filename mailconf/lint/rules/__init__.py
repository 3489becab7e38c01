"""The rules: one small module each (mcNNN_*.py), found here by name.

A rule module holds ID, PROGRAM (the reader whose config it checks, or "site" for checks across programs),
SEVERITY, RELAY (True: check-relay runs it too), MESSAGE, HINT, and `check(config)` yielding
(location, detail) pairs. Its docstring's first line is the summary; then a PASSING and a FAILING native example,
each as `--- relative/path` headers followed by the file's lines (the tests run every rule on both).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from mailconf.errors import Location


@dataclass(frozen=True)
class Rule:
    id: str
    program: str
    severity: str
    relay: bool
    message: str
    hint: str
    summary: str
    passing: dict[str, str]
    failing: dict[str, str]
    check: Callable[[Any], Iterator[tuple[Location, str]]]


def examples(doc: str) -> dict[str, dict[str, str]]:
    """{'PASSING': {path: text}, 'FAILING': {path: text}} from a rule's docstring."""
    found: dict[str, dict[str, str]] = {}
    files: dict[str, list[str]] | None = None
    current: list[str] | None = None
    for line in inspect.cleandoc(doc).splitlines():
        if line in ("PASSING:", "FAILING:"):
            files = found.setdefault(line[:-1], {})  # type: ignore[assignment]
            current = None
        elif files is not None and line.startswith("--- "):
            current = files.setdefault(line[4:].strip(), [])  # type: ignore[arg-type]
        elif current is not None:
            current.append(line)
    return {
        kind: {path: "\n".join(lines).strip("\n") + "\n" for path, lines in fs.items()} for kind, fs in found.items()
    }


@cache
def all_rules() -> tuple[Rule, ...]:
    rules = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("mc"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        doc = module.__doc__ or ""
        found = examples(doc)
        rules.append(
            Rule(
                id=module.ID,
                program=module.PROGRAM,
                severity=module.SEVERITY,
                relay=module.RELAY,
                message=module.MESSAGE,
                hint=module.HINT,
                summary=doc.strip().splitlines()[0] if doc.strip() else "",
                passing=found.get("PASSING", {}),
                failing=found.get("FAILING", {}),
                check=module.check,
            )
        )
    return tuple(sorted(rules, key=lambda r: r.id))


def markdown_table() -> str:
    """The README's table of rules (README.md holds exactly this between its rules markers)."""
    rows = ["| ID | Program | Severity | Relay | What it finds |", "|---|---|---|---|---|"]
    for rule in all_rules():
        relay = "yes" if rule.relay else ""
        summary = rule.summary.replace("|", "\\|")
        rows.append(f"| {rule.id} | {rule.program} | {rule.severity} | {relay} | {summary} |")
    return "\n".join(rows) + "\n"
