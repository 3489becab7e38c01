"""Errors are values with a location and a hint; the CLI decides how to print them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class Location(NamedTuple):
    """file:line:column (0 = unknown). A tuple: cheap enough to keep one per bulk-file line."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.file
        if not self.column:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    location: Location
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.location}: error: {self.message}"
        return f"{text}\n  hint: {self.hint}" if self.hint else text


class MailconfError(Exception):
    """Bad input from the user: one or more located problems. The CLI exits 2."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class RenderRefused(MailconfError):
    """A site feature the chosen program cannot express (never silently dropped)."""


def fail(file: str, message: str, hint: str = "", line: int = 0, column: int = 0) -> MailconfError:
    return MailconfError([Problem(Location(file, line, column), message, hint)])
