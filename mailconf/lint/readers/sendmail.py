"""Sendmail: the m4 source (sendmail.mc, any quoting) and the map sources beside it (access, relay-domains, ...).

Only the macro calls are read (FEATURE, define, RELAY_DOMAIN, ...): no m4 is run. `include()` follows files in
the config directory (absolute /etc/mail/ paths map there); library files (cf.m4) and missing files are skipped.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from mailconf.errors import Location
from mailconf.lint.core import Aliases, Setting, Source, parse_error, read_aliases

SIDE_FILES = ("access", "relay-domains", "local-host-names", "virtusertable", "mailertable")
ETC_MAIL = "/etc/mail/"
MAX_INCLUDES = 50


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[str, ...]
    location: Location

    def arg(self, index: int) -> str:
        return self.args[index] if index < len(self.args) else ""


@dataclass
class SendmailConfig:
    mc_file: str
    directory: str
    calls: list[Call]
    files: dict[str, list[Setting]] = field(default_factory=dict)  # side file -> its entries (name: key)
    aliases: Aliases | None = None

    def features(self) -> dict[str, Call]:
        return {c.arg(0): c for c in self.calls if c.name == "FEATURE"}

    def defines(self) -> dict[str, Call]:
        return {c.arg(0): c for c in self.calls if c.name == "define"}


def unquote(text: str) -> str:
    text = text.strip()
    while text.startswith("`") and text.endswith("'"):
        text = text[1:-1].strip()
    return text


class _Scanner:
    """Walks m4 text: skips quoted strings, `dnl` and `#` comments; collects NAME(args) calls."""

    def __init__(self, text: str, path: str):
        self.text, self.path, self.i, self.line = text, path, 0, 1

    def calls(self) -> list[Call]:
        found = []
        text = self.text
        while self.i < len(text):
            c = text[self.i]
            if c == "`":
                self.quoted()
            elif c == "#":
                self.to_line_end()
            elif c.isalpha() or c == "_":
                start_line = self.line
                name = self.word()
                if name == "dnl":
                    self.to_line_end()
                elif self.i < len(text) and text[self.i] == "(":
                    found.append(Call(name, self.arguments(start_line), Location(self.path, start_line)))
            else:
                self.advance()
        return found

    def advance(self, count: int = 1) -> None:
        self.line += self.text.count("\n", self.i, self.i + count)
        self.i += count

    def word(self) -> str:
        start = self.i
        while self.i < len(self.text) and (self.text[self.i].isalnum() or self.text[self.i] == "_"):
            self.i += 1
        return self.text[start : self.i]

    def to_line_end(self) -> None:
        end = self.text.find("\n", self.i)
        self.advance((end if end >= 0 else len(self.text)) + 1 - self.i)

    def quoted(self) -> str:
        start, start_line, depth = self.i, self.line, 0
        while self.i < len(self.text):
            c = self.text[self.i]
            depth += 1 if c == "`" else -1 if c == "'" else 0
            self.advance()
            if depth == 0:
                return self.text[start : self.i]
        raise parse_error(self.path, start_line, "unterminated m4 quote (` without ')")

    def arguments(self, start_line: int) -> tuple[str, ...]:
        self.advance()  # (
        args, current, depth = [], [], 0
        while self.i < len(self.text):
            c = self.text[self.i]
            if c == "`":
                current.append(self.quoted())
                continue
            if c == "#":
                self.to_line_end()
                continue
            if c.isalpha() or c == "_":
                name = self.word()
                if name == "dnl":
                    self.to_line_end()
                else:
                    current.append(name)
                continue
            self.advance()
            if c == "(":
                depth += 1
            elif c == ")" and depth == 0:
                args.append(unquote("".join(current)))
                return tuple(args)
            elif c == ")":
                depth -= 1
            elif c == "," and depth == 0:
                args.append(unquote("".join(current)))
                current = []
                continue
            current.append(c)
        raise parse_error(self.path, start_line, "unterminated macro call: `(` without `)`")


def read(source: Source, mc_file: str, options: object = None) -> SendmailConfig:
    directory = posixpath.dirname(mc_file)
    text = source.read(mc_file)
    if text is None:
        raise parse_error(mc_file, 0, "cannot read the .mc file")
    calls = _with_includes(source, directory, _Scanner(text, mc_file).calls(), [0])
    config = SendmailConfig(mc_file, directory, calls)
    for name in SIDE_FILES:
        path = posixpath.join(directory, name)
        side = source.read(path)
        if side is not None:
            config.files[name] = _entries(side, path)
    beside, etc = posixpath.join(directory, "aliases"), posixpath.join(posixpath.dirname(directory), "aliases")
    config.aliases = read_aliases(source, beside) or read_aliases(source, etc)
    return config


def _with_includes(source: Source, directory: str, calls: list[Call], count: list[int]) -> list[Call]:
    result = []
    for call in calls:
        result.append(call)
        if call.name != "include" or not call.arg(0):
            continue
        target = call.arg(0)
        if target.startswith(ETC_MAIL):
            target = target[len(ETC_MAIL) :]
        if target.startswith("/"):
            continue  # a library file (cf.m4) or a host file outside the config: not read
        path = posixpath.join(directory, target)
        text = source.read(path)
        if text is None:
            continue  # include() of a missing file is not an error
        count[0] += 1
        if count[0] > MAX_INCLUDES:
            raise parse_error(call.location.file, call.location.line, "too many includes (a loop?)")
        result += _with_includes(source, directory, _Scanner(text, path).calls(), count)
    return result


def _entries(text: str, path: str) -> list[Setting]:
    """Map source lines: `key value` (value may be empty), comments and blank lines skipped."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, *value = stripped.split(None, 1)
        entries.append(Setting(key, value[0].strip() if value else "", Location(path, number)))
    return entries


def detect(source: Source, path: str) -> str | None:
    if path.endswith(".mc") and not source.is_dir(path):
        return path
    candidate = posixpath.join(path, "sendmail.mc")
    return candidate if source.read(candidate) is not None else None
