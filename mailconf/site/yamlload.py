"""YAML to plain data, remembering where every key and value came from and refusing duplicate keys."""

from __future__ import annotations

from typing import Any

import yaml

from mailconf.errors import Location, MailconfError, Problem

Path = tuple[Any, ...]
KEY = "[key]"
STR_TAG = "tag:yaml.org,2002:str"  # suffix of a path that names a mapping key itself (pydantic's spelling)

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _Loader = yaml.SafeLoader


class Located:
    """Plain data from a YAML document plus the location of every node, by path."""

    def __init__(self, file: str, data: Any, marks: dict[Path, Location]):
        self.file = file
        self.data = data
        self.marks = marks

    def locate(self, path: Path) -> Location:
        """The location of `path`, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.marks:
                return self.marks[path]
            path = path[:-1]
        return self.marks.get((), Location(self.file, 1, 1))


def load_yaml(text: str, file: str) -> Located:
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise MailconfError(
            [Problem(Location(file, line, col), f"YAML syntax: {exc.problem or exc}", "check indentation and quoting")]
        ) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        raise MailconfError(
            [Problem(Location(file, line, column), f"character {exc.character!r} is not allowed in YAML", "remove it")]
        ) from None
    except yaml.YAMLError as exc:
        raise MailconfError([Problem(Location(file, 1, 1), f"YAML: {exc}")]) from None
    marks: dict[Path, Location] = {}
    if root is None:
        return Located(file, None, {(): Location(file, 1, 1)})
    data = _build(root, (), file, marks, loader)
    return Located(file, data, marks)


def _where(node: yaml.Node, file: str) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


MAX_NODES = 3_000_000  # anchors can make a small file expand exponentially ("billion laughs")


def _build(node: yaml.Node, path: Path, file: str, marks: dict[Path, Location], loader: Any) -> Any:
    marks[path] = _where(node, file)
    if isinstance(node, yaml.ScalarNode):
        if node.tag == STR_TAG:
            return node.value  # the common case, without the constructor's overhead
        try:
            return loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise MailconfError([Problem(_where(node, file), f"YAML value: {exc.problem}")]) from None
    if len(marks) > MAX_NODES:
        raise MailconfError([Problem(_where(node, file), "the document expands to too many nodes (anchor bomb?)")])
    if any(node is parent for parent in _open_nodes):
        raise MailconfError([Problem(_where(node, file), "a YAML alias refers to itself")])
    _open_nodes.append(node)
    try:
        return _build_collection(node, path, file, marks, loader)
    finally:
        _open_nodes.pop()


_open_nodes: list[yaml.Node] = []


def _build_collection(node: yaml.Node, path: Path, file: str, marks: dict[Path, Location], loader: Any) -> Any:
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise MailconfError([Problem(_where(key_node, file), "YAML merge keys (<<) are not supported")])
            key = _build(key_node, (*path, "<key>"), file, marks, loader)
            if not isinstance(key, str | int | float | bool) or key is None:
                raise MailconfError([Problem(_where(key_node, file), "a mapping key must be a plain scalar")])
            if key in result:
                raise MailconfError(
                    [
                        Problem(
                            _where(key_node, file),
                            f"duplicate key {key!r} (YAML would silently keep only the last one)",
                            f"first given at line {marks[(*path, key, KEY)].line}; remove or merge one of them",
                        )
                    ]
                )
            marks[(*path, key, KEY)] = _where(key_node, file)
            result[key] = _build(value_node, (*path, key), file, marks, loader)
        marks.pop((*path, "<key>"), None)
        return result
    return [_build(item, (*path, i), file, marks, loader) for i, item in enumerate(node.value)]
