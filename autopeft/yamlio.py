"""The one way autopeft reads YAML a user gives it: spaces, profiles, ``--param`` values.

PyYAML's ``SafeLoader`` runs no code, but it still expands aliases: a "billion laughs" file of
a few hundred bytes describes a value of billions of elements, and any code that walks or
prints it (a check, an error message) runs out of memory. PyYAML has no limits of its own,
so :class:`LimitedLoader` adds them while the document is composed, before anything is built:
the file's size, the number of aliases, the nesting depth, and the number of nodes the
document has once every alias is expanded (a recursive alias has no end, and is refused).
It also rejects duplicate keys and reads ``1e-4`` as a float (YAML 1.2; PyYAML follows 1.1,
where a float needs a dot).

Every problem is one :class:`~autopeft.errors.AutopeftError` line that names the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from autopeft.errors import AutopeftError, excerpt

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

# Far above any real space or profile (the shipped ones are under 4 kB, a few aliases, depth
# 6), far below what hurts: 100k expanded nodes are a few MB of Python objects.
MAX_BYTES = 1 << 20
MAX_ALIASES = 100
MAX_DEPTH = 32
MAX_EXPANDED_NODES = 100_000


class LimitedLoader(yaml.SafeLoader):
    """SafeLoader with size limits, no duplicate keys, and YAML 1.2 floats (``1e-4``)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise yaml.composer.ComposerError(
                    None, None, f"more than {MAX_ALIASES} aliases (*name)",
                    self.peek_event().start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_DEPTH} levels deep",
                    self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: Any) -> Any:
        _check_expanded_size(node)
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                dup = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: let PyYAML report it
                continue
            if dup:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {excerpt(key)}", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


LimitedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _check_expanded_size(root: Any) -> None:
    """Refuse a document of more than MAX_EXPANDED_NODES nodes with aliases expanded.

    Aliases make the node graph a DAG (or a cycle): sizes are counted once per node and
    reused, so the count costs the size of the file, not of the expansion.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size(node: Any) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in on_path:
            raise yaml.composer.ComposerError(None, None, "an alias refers to a node that holds "
                                              "it (a recursive document)", node.start_mark)
        on_path.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        on_path.discard(key)
        sizes[key] = total
        if total > MAX_EXPANDED_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"more than {MAX_EXPANDED_NODES:,} values once its aliases are "
                "expanded", node.start_mark)
        return total

    size(root)  # recursion depth is bounded by MAX_DEPTH (checked while composing)


def parse_yaml(text: str, source: str) -> Any:
    """The value of a YAML document; AutopeftError naming ``source``, line and problem."""
    try:
        return yaml.load(text, Loader=LimitedLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).strip().splitlines()[0]
        raise AutopeftError(f"{source}: invalid YAML{where}: {problem}") from None
    except RecursionError:  # deep flow collections nest in PyYAML's parser before composing
        raise AutopeftError(f"{source}: invalid YAML: nested more than {MAX_DEPTH} levels "
                            "deep") from None


def read_yaml_file(path: Path | Traversable, what: str) -> Any:
    """Read and parse a YAML file of at most MAX_BYTES bytes, UTF-8.

    Args:
        path: The file.
        what: How messages name it, e.g. ``search space x.yaml``.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise AutopeftError(f"{what}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise AutopeftError(f"{what}: larger than {MAX_BYTES // 1024} KiB; a space or profile "
                            "is a few kB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AutopeftError(f"{what}: not UTF-8 text (byte {exc.start} is "
                            f"{raw[exc.start]:#04x}); save it as UTF-8") from None
    return parse_yaml(text, what)
