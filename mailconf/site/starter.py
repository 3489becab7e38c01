"""The commented starter site.yaml that `mailconf init` writes."""

from __future__ import annotations

from pathlib import Path

from mailconf.errors import Location, MailconfError, Problem
from mailconf.render import render_template
from mailconf.site import parse_site
from mailconf.site.types import check_domain, check_fqdn, check_unix_name


def starter_site(host: str, domain: str | None, user: str) -> str:
    values = {}
    for flag, check, value in (
        ("--host", check_fqdn, host),
        ("--domain", check_domain, domain or host.partition(".")[2]),
        ("--user", check_unix_name, user),
    ):
        try:
            values[flag.lstrip("-")] = check(value)
        except ValueError as exc:
            raise MailconfError([Problem(Location(flag), str(exc))]) from None
    text = render_template("mailconf/site.yaml.j2", **values)
    parse_site(text, Path("site.yaml"))  # what we write must validate
    return text
