"""The feature parity table: every site feature against every MTA, generated from what the backends declare.

A backend lists what it cannot express in two class attributes: `refusals` (when render stops with a located
error naming the feature and the MTA) and `limitations` (rendered without that part, said in the rendered tree).
Everything else it renders. README.md carries this table; a test fails when the two drift apart.
"""

from __future__ import annotations

import importlib

from mailconf.backends import MTAS
from mailconf.site.model import Overrides

FEATURES = [
    "local domains (unix accounts)",
    "virtual domains and mailboxes",
    "aliases (local part and full address)",
    "catch-all per domain",
    "postmaster and abuse",
    "trusted networks (IPv4)",
    "trusted networks (IPv6)",
    "relay domains (backup MX)",
    "smarthost",
    "smarthost login",
    "mbox delivery",
    "Maildir delivery",
    "message size limit",
    "listen addresses and ports",
    "IPv6 listen addresses",
    "STARTTLS on port 25",
    "submission and smtps with login",
    "native overrides",
]


def backend_classes() -> dict[str, type]:
    classes = {}
    for name, spec in MTAS.items():
        if spec:
            module, _, cls = spec.partition(":")
            classes[name] = getattr(importlib.import_module(module), cls)
    return classes


def cell(backend: type, name: str, feature: str) -> str:
    if feature == "native overrides" and name not in Overrides.model_fields:
        return "no"
    refusals: dict[str, str] = getattr(backend, "refusals", {})
    limitations: dict[str, str] = getattr(backend, "limitations", {})
    if feature in limitations:
        return f"not rendered: {limitations[feature]}"
    return refusals.get(feature, "yes")


def markdown_table() -> str:
    classes = backend_classes()
    lines = ["| feature | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
    for feature in FEATURES:
        lines.append(f"| {feature} | " + " | ".join(cell(cls, name, feature) for name, cls in classes.items()) + " |")
    return "\n".join(lines) + "\n"


def unknown_features() -> list[str]:
    """Features a backend declares that the table does not know (a typo would hide a refusal)."""
    declared = {
        (name, feature)
        for name, cls in backend_classes().items()
        for feature in [*getattr(cls, "refusals", {}), *getattr(cls, "limitations", {})]
    }
    return sorted(f"{name}: {feature}" for name, feature in declared if feature not in FEATURES)
