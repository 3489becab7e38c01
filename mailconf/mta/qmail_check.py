"""mailconf's own checker of qmail's documented file formats, since qmail itself is not packaged in Debian 12.

It reads a tree laid out as on the host (a --root sandbox, or /) and reports, at file:line:column, what
qmail-control(5), qmail-send(8), qmail-smtpd(8), qmail-remote(8), qmail-users(5), dot-qmail(5) and tcprules(1)
do not allow, or what would make qmail an open relay:

- `me`, `defaultdomain`, `plusdomain`, `databytes`, `defaultdelivery` are read as their first line only:
  no comment may come first (it would be read as the value) and nothing may follow (it would be ignored).
- `locals`, `rcpthosts`, `virtualdomains`, `smtproutes` may hold comments and blank lines, one entry per line.
- `rcpthosts` must exist (without it qmail-smtpd relays for everyone) and list a domain (empty: rejects all).
- `users/assign` lines have eight colon-separated fields and the file ends with a line holding a single dot.
- .qmail files hold comment, program, forward (fully qualified address), mbox and maildir lines.
- `percenthack` (a relay trick) must list nothing; `morercpthosts.cdb` must be rebuilt after `morercpthosts`.
- tcp.smtp rules are `ADDRESS:allow|deny[,VAR=value...]`; the catch-all rule must not set RELAYCLIENT.

Usage: mailconf check-qmail [--root ROOT], or python3 -m mailconf.mta.qmail_check ROOT (exit 0: clean, 1: problems)
"""

from __future__ import annotations

import ipaddress
import re
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

from mailconf.errors import Location, Problem

CONTROL = "var/qmail/control"
ALIAS_HOME = "var/qmail/alias"
ASSIGN = "var/qmail/users/assign"
TCP_SMTP = "etc/tcp.smtp"

_DOMAIN = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN = re.compile(_DOMAIN)
FQDN = re.compile(rf"(?=.*\.){_DOMAIN}")
ADDRESS = re.compile(rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~.-]+@{_DOMAIN}\.?", re.IGNORECASE)
PREPEND = re.compile(r"[A-Za-z0-9._=+-]*")
RELAY = re.compile(rf"(?:{_DOMAIN}|\[\d{{1,3}}(?:\.\d{{1,3}}){{3}}\])(?::\d{{1,5}})?")
DOT_QMAIL_EXT = re.compile(r"\.qmail(?:-[a-z0-9_:=+-]*)?")
TCP_OCTET = r"\d{1,3}(?:-\d{1,3})?"
TCP_ADDRESS = re.compile(rf"(?:{TCP_OCTET}\.){{0,3}}{TCP_OCTET}\.?|=[A-Za-z0-9.-]*|")
TCP_INSTRUCTIONS = re.compile(r'(allow|deny)((?:,[A-Za-z_][A-Za-z0-9_]*=(?:"[^"]*"|[^,"]*))*)')
PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8")]


def check_tree(root: str | Path) -> list[Problem]:
    """Every problem in the qmail files under `root`, sorted by location."""
    root = Path(root)
    problems = [
        *_check_control(root),
        *_check_assign(root),
        *_check_dot_qmail_files(root),
        *_check_tcp_rules(root / TCP_SMTP),
    ]
    return sorted(problems, key=lambda p: p.location)


# ------------------------------------------------------------------------------------------ control files


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").split("\n")


def _check_single(path: Path, valid: re.Pattern[str], what: str, required: bool = False) -> Iterator[Problem]:
    """A file qmail reads with control_readline: its first line is the value, the rest is ignored."""
    if not path.exists():
        if required:
            yield Problem(Location(str(path)), f"{path.name} is missing", f"it holds {what}")
        return
    lines = _lines(path)
    if lines[-1] == "":
        lines.pop()
    if not lines:
        yield Problem(Location(str(path)), f"{path.name} is empty", f"write {what} on its first line")
        return
    value = lines[0].rstrip(" \t")  # qmail-control(5): trailing spaces and tabs are allowed
    if value.startswith("#"):
        yield Problem(
            Location(str(path), 1, 1),
            f"{path.name} does not allow comments: qmail reads this line as the value",
            f"the first line must be {what}",
        )
        return  # one mistake: the lines after the comment are the value misplaced
    if not valid.fullmatch(value):
        yield Problem(Location(str(path), 1, 1), f"{path.name}: {value!r} is not {what}")
    for number, line in enumerate(lines[1:], start=2):
        if line.strip(" \t"):
            yield Problem(
                Location(str(path), number, 1),
                f"{path.name}: trailing junk after the value: qmail reads only the first line",
                "remove every line after the first",
            )
            break


def _entries(path: Path) -> Iterator[tuple[int, str]]:
    """The entries of a file qmail reads with control_readfile: comments and blank lines skipped."""
    for number, line in enumerate(_lines(path), start=1):
        entry = line.rstrip(" \t")
        if entry and not entry.startswith("#"):
            yield number, entry


def _check_list(path: Path, check, what: str) -> Iterator[Problem]:
    for number, entry in _entries(path):
        if entry[0] in " \t":
            yield Problem(
                Location(str(path), number, 1),
                f"{path.name}: leading blank: qmail would read it as part of the entry",
                "start the line with the entry",
            )
        elif not check(entry):
            yield Problem(Location(str(path), number, 1), f"{path.name}: {entry!r} is not {what}")


def _virtualdomain(entry: str) -> bool:
    domain, colon, prepend = entry.partition(":")
    target = domain.rpartition("@")[2].removeprefix(".")
    valid_domain = not target or DOMAIN.fullmatch(target) is not None
    return bool(colon) and valid_domain and PREPEND.fullmatch(prepend) is not None


def _smtproute(entry: str) -> bool:
    domain, colon, relay = entry.partition(":")
    domain = domain[1:] if domain.startswith(".") else domain
    if not colon or (domain and not DOMAIN.fullmatch(domain)):
        return False
    if not relay:
        return True  # empty relay: look up the MX as usual
    match = RELAY.fullmatch(relay)
    port = relay.rpartition(":")[2] if ":" in relay else "25"
    return match is not None and 1 <= int(port) <= 65535


def _check_control(root: Path) -> Iterator[Problem]:
    control = root / CONTROL
    yield from _check_single(control / "me", FQDN, "the fully qualified host name", required=True)
    yield from _check_single(control / "defaultdomain", DOMAIN, "a domain name")
    yield from _check_single(control / "plusdomain", DOMAIN, "a domain name")
    yield from _check_single(control / "databytes", re.compile(r"\d+"), "a number of bytes (digits only)")
    yield from _check_single(control / "defaultdelivery", re.compile(r"\./\S+|/\S+|&\S+"), "a delivery instruction")

    rcpthosts = control / "rcpthosts"
    if not rcpthosts.exists():
        yield Problem(
            Location(str(rcpthosts)),
            "rcpthosts is missing: qmail-smtpd then accepts mail for every domain from anyone (an open relay)",
            "list every domain this host accepts mail for",
        )
    else:
        yield from _check_list(rcpthosts, lambda e: DOMAIN.fullmatch(e.removeprefix(".")) is not None, "a domain")
        if not any(True for _ in _entries(rcpthosts)):
            yield Problem(
                Location(str(rcpthosts)),
                "rcpthosts lists no domain: qmail-smtpd rejects all mail",
                "list every domain this host accepts mail for",
            )

    locals_: set[str] = set()
    if (control / "locals").exists():
        yield from _check_list(control / "locals", lambda e: DOMAIN.fullmatch(e) is not None, "a domain")
        locals_ = {entry for _, entry in _entries(control / "locals")}
    virtual = control / "virtualdomains"
    if virtual.exists():
        yield from _check_list(virtual, _virtualdomain, "domain:prepend (without blanks)")
        for number, entry in _entries(virtual):
            domain = entry.partition(":")[0].rpartition("@")[2]
            if domain in locals_:
                yield Problem(
                    Location(str(virtual), number, 1),
                    f"virtualdomains: {domain} is also in locals, so qmail-send ignores this line",
                    "keep the domain in one of the two",
                )
    percenthack = control / "percenthack"
    if percenthack.exists():
        for number, entry in _entries(percenthack):
            yield Problem(
                Location(str(percenthack), number, 1),
                f"percenthack lists {entry}: user%elsewhere@{entry} would be relayed to elsewhere",
                "remove the file: the percent hack is a relay trick",
            )
    more, more_cdb = control / "morercpthosts", control / "morercpthosts.cdb"
    if more.exists() and (not more_cdb.exists() or more_cdb.stat().st_mtime < more.stat().st_mtime):
        yield Problem(
            Location(str(more)),
            "morercpthosts is newer than morercpthosts.cdb: qmail-smtpd still reads the old list",
            "run qmail-newmrh",
        )
    if (control / "smtproutes").exists():
        yield from _check_list(control / "smtproutes", _smtproute, "domain:relay[:port]")


def _check_assign(root: Path) -> Iterator[Problem]:
    path = root / ASSIGN
    if not path.exists():
        return
    lines = _lines(path)
    if lines[-1] == "":
        lines.pop()
    if "." not in lines:
        yield Problem(
            Location(str(path), len(lines) or 1, 1),
            "assign must end with a line holding a single dot",
            "add a last line: .",
        )
    for number, line in enumerate(lines, start=1):
        if line == ".":
            if number != len(lines):
                yield Problem(Location(str(path), number + 1, 1), "assign: lines after the final dot are ignored")
            break
        fields = line.split(":")
        if line[:1] not in ("=", "+") or len(fields) != 8 or fields[7] != "":
            yield Problem(
                Location(str(path), number, 1),
                "assign: not an assignment",
                "=local:user:uid:gid:homedir"
                ":dash:ext: or +loc:user:uid:gid:homedir:dash:pre: (comments are not allowed)",
            )
            continue
        _, user, uid, gid, home, dash, _ext, _ = fields
        column = len(":".join(fields[:2])) + 2
        if not (uid.isdigit() and gid.isdigit()):
            yield Problem(Location(str(path), number, column), "assign: uid and gid must be numbers")
        elif int(uid) == 0:
            yield Problem(Location(str(path), number, column), "assign: qmail never delivers as root (uid 0)")
        if not user or not home.startswith("/"):
            yield Problem(Location(str(path), number, 1), "assign: needs a user name and an absolute home directory")
        if dash not in ("", "-"):
            yield Problem(Location(str(path), number, 1), f"assign: dash must be empty or '-', not {dash!r}")


# ------------------------------------------------------------------------------------------ .qmail files


def _homes(root: Path) -> list[Path]:
    """Where .qmail files live: ~alias, and the home directories users/assign names."""
    homes = [root / ALIAS_HOME]
    path = root / ASSIGN
    if path.exists():
        for line in _lines(path):
            fields = line.split(":")
            if len(fields) == 8 and fields[4].startswith("/"):
                home = Path(fields[4])
                homes.append(home if str(home).startswith(str(root.resolve())) else root / fields[4].lstrip("/"))
    return [h for h in dict.fromkeys(homes) if h.is_dir()]


def _check_dot_qmail_files(root: Path) -> Iterator[Problem]:
    for home in _homes(root):
        for path in sorted(home.glob(".qmail*")):
            yield from check_dot_qmail(path)


def check_dot_qmail(path: Path) -> Iterator[Problem]:
    """One .qmail file against dot-qmail(5)."""
    if not DOT_QMAIL_EXT.fullmatch(path.name):
        yield Problem(
            Location(str(path)),
            f"{path.name}: qmail-local looks for lower-case names with ':' for '.', so it never reads this file",
            "rename it",
        )
    mode = path.stat().st_mode
    if mode & stat.S_IWOTH:
        yield Problem(Location(str(path)), f"{path.name} is world-writable: qmail-local defers every delivery")
    text = path.read_text(encoding="utf-8", errors="replace")
    if text == "":
        return  # empty: the default delivery
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip(" \t")
        where = Location(str(path), number, 1)
        if not line:
            if number == 1:
                yield Problem(where, "dot-qmail: the first line must not be blank")
            continue
        kind = line[0]
        if kind == "#":
            continue
        if kind == "|":
            if not line[1:].strip():
                yield Problem(where, "dot-qmail: a program line needs a command")
            elif mode & stat.S_IXUSR:
                yield Problem(where, "dot-qmail: program lines are not allowed in a .qmail file with the execute bit")
        elif kind in "./":
            if any(c in line for c in " \t"):
                yield Problem(where, f"dot-qmail: blank inside the file name {line!r}")
            elif mode & stat.S_IXUSR:
                yield Problem(where, "dot-qmail: file lines are not allowed in a .qmail file with the execute bit")
        elif kind == "&" or kind.isalnum():
            address = line[1:] if kind == "&" else line
            if not ADDRESS.fullmatch(address) or "." not in address.rpartition("@")[2]:
                yield Problem(
                    where,
                    f"dot-qmail: {address!r} is not a fully qualified address",
                    "forward to user@domain.tld, without blanks, angle brackets or comments",
                )
        else:
            yield Problem(
                where,
                f"dot-qmail: {line!r} is not a delivery instruction",
                "use # comment, |program, &address, ./mbox or ./maildir/",
            )


# ------------------------------------------------------------------------------------------ tcp.smtp


def _rule_network(address: str) -> tuple[int, int] | None:
    """The first and last IPv4 address (as integers) an address rule matches; None for host-name rules."""
    if address.startswith("="):
        return None
    parts = [p for p in address.split(".") if p != ""]
    low, high = [], []
    for part in parts:
        a, _, b = part.partition("-")
        low.append(int(a))
        high.append(int(b or a))
    low += [0] * (4 - len(low))
    high += [255] * (4 - len(high))
    return int(ipaddress.IPv4Address(".".join(map(str, low)))), int(ipaddress.IPv4Address(".".join(map(str, high))))


def _check_tcp_rules(path: Path) -> Iterator[Problem]:
    if not path.exists():
        return
    for number, raw in enumerate(_lines(path), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        address, colon, instructions = line.partition(":")
        where = Location(str(path), number, 1)
        if not colon or not TCP_ADDRESS.fullmatch(address):
            yield Problem(
                where,
                f"tcp.smtp: {line!r} is not ADDRESS:allow or ADDRESS:deny",
                'e.g. 192.168.1.:allow,RELAYCLIENT=""',
            )
            continue
        match = TCP_INSTRUCTIONS.fullmatch(instructions)
        if not match:
            yield Problem(
                Location(str(path), number, len(address) + 2),
                f"tcp.smtp: {instructions!r} is not allow|deny[,VAR=value...]",
            )
            continue
        if "RELAYCLIENT=" not in match[2] or match[1] == "deny":
            continue
        if address == "":
            yield Problem(
                where,
                "tcp.smtp: the catch-all rule gives RELAYCLIENT to every client: an open relay",
                'end with a plain ":allow"',
            )
            continue
        span = _rule_network(address)
        if span is None:
            continue
        octets = [int(x) for p in address.split(".") if p for x in p.split("-")]
        if any(o > 255 for o in octets):
            yield Problem(where, f"tcp.smtp: {address!r} has an octet above 255")
            continue
        first, last = (ipaddress.IPv4Address(n) for n in span)
        private = any(first in net and last in net for net in PRIVATE)
        if not private and span[1] - span[0] + 1 > 256:
            yield Problem(
                where,
                f"tcp.smtp: {address} gives RELAYCLIENT to {span[1] - span[0] + 1} public addresses",
                "trust only your own clients' networks (at most a /24 of public addresses)",
            )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python3 -m mailconf.mta.qmail_check ROOT", file=sys.stderr)
        return 2
    problems = check_tree(args[0])
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
