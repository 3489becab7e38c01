"""Human-readable: `file:line: severity: [ID] message`, the hint below, a count at the end."""

from __future__ import annotations

from mailconf.lint.core import Finding


def render(findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        lines.append(f"{f.location}: {f.severity}: [{f.rule}] {f.message}")
        if f.hint:
            lines.append(f"  hint: {f.hint}")
    counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
    summary = ", ".join(f"{n} {s}(s)" for s, n in counts.items() if n) or "no findings"
    return "\n".join([*lines, summary]) + "\n"
