"""Output formats: one module each with `render(findings) -> str`."""

from __future__ import annotations

import importlib

from mailconf.lint.core import Finding

FORMATS = ("text", "json", "sarif", "github")


def render(findings: list[Finding], fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    return importlib.import_module(f"{__name__}.{fmt}").render(findings)
