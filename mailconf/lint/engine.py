"""Find which programs' configs a path holds, read them, run the rules, return the findings."""

from __future__ import annotations

import importlib
import os
import posixpath
from dataclasses import dataclass
from typing import Any

from mailconf.errors import Location, MailconfError, Problem
from mailconf.lint.core import DiskSource, Finding, Source
from mailconf.lint.rules import all_rules

# program -> reader module; each has detect(source, path) -> root | None and read(source, root, options).
READERS = {
    "postfix": "mailconf.lint.readers.postfix",
    "exim": "mailconf.lint.readers.exim",
    "sendmail": "mailconf.lint.readers.sendmail",
    "qmail": "mailconf.lint.readers.qmail",
    "dovecot": "mailconf.lint.readers.dovecot",
}
MAX_DEPTH = 4  # how deep `lint DIR` looks for configs


@dataclass(frozen=True)
class Options:
    tcp_rules: str | None = None  # qmail: the tcpserver rules file


def reader(program: str) -> Any:
    return importlib.import_module(READERS[program])


def find_roots(source: Source, path: str, mta: str | None = None) -> list[tuple[str, str]]:
    """(program, root) pairs for a path: a config directory, a file in one, or a tree holding several."""
    if mta is not None:
        return [(mta, reader(mta).detect(source, path) or path)]
    if not source.is_dir(path):
        directory = path
        for _ in range(4):  # a file: the config it belongs to, looking up from it
            found = _detect_here(source, directory)
            if found:
                return found
            directory = posixpath.dirname(directory)
        return []
    return _walk(source, path, 0)


def _detect_here(source: Source, path: str) -> list[tuple[str, str]]:
    return [(program, root) for program in READERS if (root := reader(program).detect(source, path))]


def _walk(source: Source, directory: str, depth: int) -> list[tuple[str, str]]:
    found = _detect_here(source, directory)
    if found or depth >= MAX_DEPTH:
        return found
    for name in source.listdir(directory):
        child = posixpath.join(directory, name)
        if not name.startswith(".") and source.is_dir(child) and not os.path.islink(child):
            found += _walk(source, child, depth + 1)
    return found


def load(
    paths: list[str], mta: str | None = None, options: Options | None = None, source: Source | None = None
) -> dict[str, list[Any]]:
    """Every config under the paths, by program. Unreadable or unparseable input raises MailconfError."""
    source = source or DiskSource()
    options = options or Options()
    if mta is not None and mta not in READERS:
        raise MailconfError([Problem(Location("--mta"), f"unknown program {mta!r}", f"one of: {', '.join(READERS)}")])
    configs: dict[str, list[Any]] = {}
    seen: set[tuple[str, str]] = set()
    problems: list[Problem] = []
    for path in paths:
        if isinstance(source, DiskSource) and not os.path.exists(path):
            problems.append(Problem(Location(path), "no such file or directory"))
            continue
        roots = find_roots(source, path, mta)
        if not roots:
            problems.append(
                Problem(
                    Location(path),
                    "no Postfix, Exim, Sendmail, qmail or Dovecot config found here",
                    "point at the config directory, or name the program with --mta",
                )
            )
        for program, root in roots:
            if (program, root) in seen:
                continue
            seen.add((program, root))
            try:
                configs.setdefault(program, []).append(reader(program).read(source, root, options))
            except MailconfError as error:
                problems += error.problems
    if problems:
        raise MailconfError(problems)
    return configs


def run_rules(configs: dict[str, list[Any]], relay_only: bool = False) -> list[Finding]:
    findings = set()
    for rule in all_rules():
        if relay_only and not rule.relay:
            continue
        targets = [configs] if rule.program == "site" else configs.get(rule.program, [])
        for config in targets:
            for location, detail in rule.check(config):
                message = f"{rule.message}: {detail}" if detail else rule.message
                findings.add(Finding(location, rule.id, rule.severity, message, rule.hint, rule.relay))
    return sorted(findings)


def lint(
    paths: list[str],
    mta: str | None = None,
    relay_only: bool = False,
    options: Options | None = None,
    source: Source | None = None,
) -> list[Finding]:
    return run_rules(load(paths, mta, options, source), relay_only)
