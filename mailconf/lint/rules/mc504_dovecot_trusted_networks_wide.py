"""Dovecot trusts everyone or a public range wider than /24 or /48 (login_trusted_networks skip the TLS rule).

PASSING:
--- dovecot.conf
login_trusted_networks = 127.0.0.1 10.1.2.0/24
FAILING:
--- dovecot.conf
login_trusted_networks = 127.0.0.1 0.0.0.0/0
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.dovecot import DovecotConfig
from mailconf.lint.rules._ranges import too_wide

ID = "MC504"
PROGRAM = "dovecot"
SEVERITY = "error"
RELAY = False
MESSAGE = "login_trusted_networks trusts the Internet"
HINT = "list only your own proxies or clients (public ranges at most /24 or /48)"


def check(config: DovecotConfig) -> Iterator[tuple[Location, str]]:
    grants = [(word, s.location) for s in config.all("login_trusted_networks") for word in s.value.split()]
    yield from too_wide(grants, {"everyone", "public"})
