"""YAML parsing that remembers the line of every key and list item."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from monitor.config.errors import ConfigError, ConfigIssue, Path


@dataclass
class Source:
    """Parsed YAML data plus the line (1-based) of each path in it."""

    file: str
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int:
        """Line of ``path`` or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), 1)

    def issue(self, path: Path, message: str) -> ConfigIssue:
        return ConfigIssue(self.file, self.line_of(path), tuple(path), message)


def _build(node: yaml.Node, path: Path, src: Source) -> Any:
    src.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader.construct_scalar(_LOADER, key_node)  # type: ignore[arg-type]
            if key in out:
                raise ConfigError([ConfigIssue(src.file, key_node.start_mark.line + 1,
                                               (*path, key), "duplicate key")])
            src.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, (*path, key), src)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), src) for i, item in enumerate(node.value)]
    return _LOADER.construct_object(node, deep=True)


_LOADER = yaml.SafeLoader("")


def parse_yaml(text: str, file: str) -> Source:
    """Parse ``text``; a YAML syntax error becomes a ConfigError with its line."""
    src = Source(file=file, data=None)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = min(mark.line + 1 if mark else 1, max(1, len(text.splitlines())))
        message = f"invalid YAML: {err.problem}"
        if err.context and err.context_mark:
            message += f" ({err.context} started on line {err.context_mark.line + 1})"
        raise ConfigError([ConfigIssue(file, line, (), message)]) from err
    if node is None:
        raise ConfigError([ConfigIssue(file, 1, (), "the file is empty")])
    src.data = _build(node, (), src)
    return src
