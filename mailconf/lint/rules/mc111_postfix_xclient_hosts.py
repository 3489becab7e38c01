"""Postfix lets hosts other than loopback claim any client address with XCLIENT (and so relay).

PASSING:
--- main.cf
smtpd_authorized_xclient_hosts = 127.0.0.1
FAILING:
--- main.cf
smtpd_authorized_xclient_hosts = 127.0.0.1, 192.0.2.0/24
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.postfix import PostfixConfig

ID = "MC111"
PROGRAM = "postfix"
SEVERITY = "warning"
RELAY = True
MESSAGE = "XCLIENT is authorized beyond loopback"
HINT = "authorize XCLIENT only for a local proxy (127.0.0.1), or not at all"


def loopback(text: str) -> bool:
    try:
        return ipaddress.ip_network(text.strip("[]").replace("]/", "/"), strict=False).is_loopback
    except ValueError:
        return text == "localhost"


def check(config: PostfixConfig) -> Iterator[tuple[Location, str]]:
    for item in config.tokens("smtpd_authorized_xclient_hosts"):
        if not loopback(item.name):
            yield item.location, item.name
