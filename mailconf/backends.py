"""One small interface every program's backend implements, and the registry that finds them by name.

The core never says "if postfix": it asks the registry for a backend and calls the interface.
"""

from __future__ import annotations

import importlib
from typing import ClassVar, Protocol

from mailconf.errors import Location, MailconfError, Problem
from mailconf.render import Rendering, Target
from mailconf.site import LoadedSite, paused_gc


class Backend(Protocol):
    name: ClassVar[str]  # postfix, dovecot, ...
    role: ClassVar[str]  # "mta" or "pop_imap"

    def render(self, loaded: LoadedSite, target: Target, mta: object = None) -> Rendering:
        """Every file of this program for the site, plus the map builds, checks and service commands.

        A POP/IMAP backend gets the MTA's backend as `mta`, to meet it where it looks (login socket)."""
        ...


# name -> "module:Class"; an entry of None is a program whose backend has not landed yet.
MTAS: dict[str, str | None] = {
    "postfix": "mailconf.mta.postfix:Postfix",
    "exim": "mailconf.mta.exim:Exim",
    "sendmail": "mailconf.mta.sendmail:Sendmail",
    "qmail": "mailconf.mta.qmail:Qmail",
}
POP_IMAP: dict[str, str | None] = {"dovecot": "mailconf.popimap.dovecot:Dovecot"}


def get_backend(name: str, role: str) -> Backend:
    registry = MTAS if role == "mta" else POP_IMAP
    if name not in registry:
        raise MailconfError(
            [
                Problem(
                    Location("--mta" if role == "mta" else "--pop-imap"),
                    f"unknown program {name!r}",
                    f"choose one of: {', '.join(registry)}",
                )
            ]
        )
    spec = registry[name]
    if spec is None:
        raise MailconfError(
            [Problem(Location("--mta"), f"{name} is not supported yet", f"use one of: {', '.join(supported(role))}")]
        )
    module, _, cls = spec.partition(":")
    return getattr(importlib.import_module(module), cls)()


def supported(role: str) -> list[str]:
    registry = MTAS if role == "mta" else POP_IMAP
    return [name for name, spec in registry.items() if spec]


def render_site(loaded: LoadedSite, mta: str, pop_imap: str | None, target: Target) -> Rendering:
    mta_backend = get_backend(mta, "mta")
    with paused_gc():
        rendering = mta_backend.render(loaded, target)
        if pop_imap:
            rendering.extend(get_backend(pop_imap, "pop_imap").render(loaded, target, mta=mta_backend))
    return rendering
