"""Load a site description: YAML (+ bulk files) -> validated Site, or located problems."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mailconf.errors import Location, MailconfError, Problem
from mailconf.site.bulk import parse_aliases, parse_users
from mailconf.site.checks import check_site
from mailconf.site.model import Site
from mailconf.site.yamlload import KEY, Located, load_yaml

__all__ = ["LoadedSite", "Site", "load_site", "parse_site"]


@dataclass
class LoadedSite:
    site: Site
    path: Path  # the site file
    located: Located

    def read_secret(self, name: str) -> str:
        """A secret file named by the site (relative to it); it must not be readable by group or others."""
        path = self.path.parent / name
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise MailconfError([Problem(Location(str(path)), f"cannot read secret file: {exc.strerror}")]) from None
        if mode & 0o077:
            raise MailconfError(
                [Problem(Location(str(path)), f"secret file is mode {mode & 0o777:04o}", f"chmod 600 {path}")]
            )
        return text


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building large acyclic data (100,000 addresses): its passes
    over the growing heap cost almost as much as the work itself. Reference counting still frees memory."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_site(path: str | os.PathLike[str]) -> LoadedSite:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise MailconfError([Problem(Location(str(path)), f"cannot read site file: {reason}")]) from None
    with paused_gc():
        return parse_site(text, path)


def parse_site(text: str, path: Path) -> LoadedSite:
    located = load_yaml(text, str(path))
    data = located.data
    if not isinstance(data, dict):
        raise MailconfError(
            [Problem(located.locate(()), "the site file must be a mapping", "start with `host:` and `domains:`")]
        )
    data = dict(data)
    bulk_problems: list[Problem] = []
    users_from_file = _bulk(path, located, data, "users_file", parse_users, bulk_problems)
    aliases_from_file = _bulk(path, located, data, "aliases_file", parse_aliases, bulk_problems)
    if bulk_problems:
        raise MailconfError(bulk_problems)
    try:
        site = Site.model_validate(data)
    except ValidationError as exc:
        raise MailconfError([_pydantic_problem(e, located) for e in exc.errors()]) from None

    _merge_users(site, located, users_from_file)
    _merge_aliases(site, located, aliases_from_file)
    problems = [Problem(located.locate(where), message, hint) for where, message, hint in check_site(site)]
    if problems:
        raise MailconfError(problems)
    return LoadedSite(site, path, located)


def _bulk(path: Path, located: Located, data: dict[str, Any], key: str, parse, problems: list[Problem]):
    name = data.get(key)
    if name is None:
        return []
    if not isinstance(name, str):
        return []  # the model reports the wrong type
    file = path.parent / name
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        problems.append(Problem(located.locate((key,)), f"cannot read {key} {name!r}: {reason}"))
        return []
    try:
        return [(Location(str(file), line, 1), item) for line, item in parse(text, str(file))]
    except MailconfError as exc:
        problems.extend(exc.problems)
        return []


def _merge_users(site: Site, located: Located, rows: list) -> None:
    first = len(site.users)
    for i, (where, user) in enumerate(rows):
        located.marks[("users", first + i)] = where
        site.users.append(user)


def _merge_aliases(site: Site, located: Located, rows: list) -> None:
    for where, (name, targets) in rows:
        if name in site.aliases:
            raise MailconfError([Problem(where, f"alias {name} is defined twice", "define each alias once")])
        located.marks[("aliases", name)] = where
        site.aliases[name] = targets


def _pydantic_problem(error: dict[str, Any], located: Located) -> Problem:
    loc = tuple(error["loc"])
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    hint = ""
    loc = _data_path(located.data, loc, keep_last=kind == "missing")
    if kind == "extra_forbidden" and loc:
        allowed = _fields_at(loc[:-1])
        message = f"unknown key {loc[-1]!r}"
        hint = f"allowed here: {', '.join(allowed)}" if allowed else "remove it"
        loc = (*loc, KEY)
    elif kind == "missing" and loc:
        message = f"missing required key {loc[-1]!r}"
        where = located.locate(loc[:-1])
        return Problem(where, message, "add it")
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        value = error.get("input")
        message = f"{message} (got {type(value).__name__} {value!r})" if not isinstance(value, dict | list) else message
    return Problem(located.locate(loc), message, hint)


def _data_path(data: Any, loc: tuple[Any, ...], keep_last: bool) -> tuple[Any, ...]:
    """The part of pydantic's `loc` that names real keys and indexes in the document.

    pydantic adds names of validators and union members ('function-before[...]', 'int') to a loc; a
    key or index that does not exist in the data is one of those, except the missing key itself."""
    path: list[Any] = []
    for i, part in enumerate(loc):
        if (isinstance(data, dict) and part in data) or (
            isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        ):
            data = data[part]
        elif part == KEY or (keep_last and i == len(loc) - 1):
            pass
        else:
            continue
        path.append(part)
    return tuple(path)


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """Names of the keys the model accepts at `loc`, for 'unknown key' hints."""
    model: Any = Site
    for part in loc:
        if isinstance(part, int) or not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        model = _model_in(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    """The first BaseModel class inside an annotation such as list[Annotated[User, ...]] | None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) + tuple(getattr(annotation, "__metadata__", ())):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
