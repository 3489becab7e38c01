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


def render_programs(loaded: LoadedSite, programs: dict[str, str], target: Target) -> dict[str, Rendering]:
    """Each program's rendering on its own (their service commands differ): the MTA first, then POP/IMAP,
    fetchmail and the super-server (inetd, xinetd) when the site uses them."""
    from mailconf.fetchmail import Fetchmail
    from mailconf.popimap.superserver import SuperServer

    mta = get_backend(programs["mta"], "mta")
    with paused_gc():
        renderings = {programs["mta"]: mta.render(loaded, target)}
        if "pop_imap" in programs:
            pop_imap = get_backend(programs["pop_imap"], "pop_imap")
            renderings[programs["pop_imap"]] = pop_imap.render(loaded, target, mta=mta)
        for name, extra in (("fetchmail", Fetchmail()), (loaded.site.pop_imap.mode, SuperServer())):
            rendering = extra.render(loaded, target)
            if rendering.files:
                renderings[name] = rendering
    return renderings


def render_site(loaded: LoadedSite, mta: str, pop_imap: str | None, target: Target) -> Rendering:
    """Every file of the site for this MTA (and POP/IMAP server), as one rendering."""
    programs = {"mta": mta} | ({"pop_imap": pop_imap} if pop_imap else {})
    return Rendering.combined(render_programs(loaded, programs, target).values())
