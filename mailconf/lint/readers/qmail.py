"""qmail: the control/ files of qmail's home, and the tcpserver rules file (tcp.smtp) that sets RELAYCLIENT."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from mailconf.errors import Location
from mailconf.lint.core import Aliases, Delivery, Setting, Source

MARKERS = ("me", "rcpthosts", "locals", "defaultdomain", "virtualdomains")
SYSTEM_TCP_RULES = "/etc/tcp.smtp"


@dataclass
class TcpRule:
    """`address:allow,VAR="value"`: who matches, whether they are let in, and the variables they get."""

    address: str
    allow: bool
    variables: dict[str, str]
    location: Location


@dataclass
class QmailConfig:
    home: str
    control_dir: str
    control: dict[str, list[Setting]]  # file name -> its non-comment lines (a Setting per line); absent: missing
    tcp_rules_file: str | None
    tcp_rules: list[TcpRule] = field(default_factory=list)
    control_files: set[str] = field(default_factory=set)  # every name in control/, built .cdb files too
    aliases: Aliases | None = None  # names with an alias/.qmail-NAME file

    def delivery(self) -> Delivery | None:
        lines = self.control.get("defaultdelivery") or []
        first = lines[0].value if lines else ""
        if first.startswith("./"):
            kind = "maildir" if first.endswith("/") else "mbox"
            return Delivery(kind, "~/" + first[2:].rstrip("/"), lines[0].location)
        return None

    def location(self, name: str) -> Location:
        return Location(posixpath.join(self.control_dir, name))


def control_lines(text: str, path: str) -> list[Setting]:
    return [
        Setting(path, line.strip(), Location(path, number))
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def parse_tcp_rules(text: str, path: str) -> list[TcpRule]:
    rules = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue  # tcprules silently accepts a line without a colon
        address, _, instructions = _split_rule(line)
        parts = [p.strip() for p in instructions.split(",")]
        variables = {}
        for part in parts[1:]:
            name, _, value = part.partition("=")
            variables[name.strip()] = value.strip().strip("\"'")
        rules.append(TcpRule(address, parts[0] == "allow", variables, Location(path, number)))
    return rules


def _split_rule(line: str) -> tuple[str, str, str]:
    """Split at the colon that ends the address (IPv6 addresses hold colons too)."""
    for keyword in (":allow", ":deny"):
        index = line.find(keyword)
        if index >= 0:
            return line[:index], ":", line[index + 1 :]
    return line.rpartition(":")


def read(source: Source, home: str, options: object = None) -> QmailConfig:
    control_dir = posixpath.join(home, "control")
    control = {}
    for name in source.listdir(control_dir):
        if name.endswith(".cdb"):
            continue  # built (binary) files: only their presence counts
        path = posixpath.join(control_dir, name)
        text = source.read(path)
        if text is not None:
            control[name] = control_lines(text, path)
    rules_file = _tcp_rules_file(source, home, getattr(options, "tcp_rules", None))
    rules_text = source.read(rules_file) if rules_file else None
    alias_dir = posixpath.join(home, "alias")
    names = frozenset(n.removeprefix(".qmail-") for n in source.listdir(alias_dir) if n.startswith(".qmail-"))
    config = QmailConfig(
        home,
        control_dir,
        control,
        rules_file if rules_text is not None else None,
        parse_tcp_rules(rules_text, rules_file) if rules_text is not None and rules_file else [],
        Aliases(names, alias_dir) if source.is_dir(alias_dir) else None,
    )
    config.control_files = set(source.listdir(control_dir))
    return config


def _tcp_rules_file(source: Source, home: str, given: str | None) -> str | None:
    """--tcp-rules FILE, else tcp.smtp in the config dir, else the system's /etc/tcp.smtp."""
    if given:
        return given
    beside = posixpath.join(home, "tcp.smtp")
    if source.read(beside) is not None:
        return beside
    return SYSTEM_TCP_RULES if source.read(SYSTEM_TCP_RULES) is not None else None


def detect(source: Source, path: str) -> str | None:
    if source.is_dir(path) and posixpath.basename(path.rstrip("/")) == "control":
        home = posixpath.dirname(path.rstrip("/"))
        return home if any(n in MARKERS for n in source.listdir(path)) else None
    control = posixpath.join(path, "control")
    return path if source.is_dir(control) and any(n in MARKERS for n in source.listdir(control)) else None
