"""Guards shared by every YAML reader: aliases that recurse or explode, absurd nesting.

``yaml.safe_load`` never runs code, but a hostile or broken file can still make it recurse
forever (a self-referencing alias), exhaust the stack (thousands of nested brackets) or
expand exponentially ("billion laughs"). :func:`check_graph` walks the composed node graph
once per node (aliases are shared nodes), so its work grows with the file, not with the
expansion, and rejects each of these with a clear message.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import yaml

MAX_EXPANDED_NODES = 1_000_000
MAX_DEPTH = 200


class YamlShapeError(ValueError):
    """The document is valid YAML but not a sane configuration value."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def check_graph(root: yaml.Node) -> None:
    """Reject recursive aliases, nesting deeper than MAX_DEPTH, and documents whose aliases
    expand to more than MAX_EXPANDED_NODES values."""
    size: dict[int, int] = {}
    on_stack: set[int] = set()

    def children(node: yaml.Node) -> list[yaml.Node]:
        if isinstance(node, yaml.MappingNode):
            return [n for pair in node.value for n in pair]
        if isinstance(node, yaml.SequenceNode):
            return list(node.value)
        return []

    # iterative post-order DFS: no Python recursion, so no RecursionError here
    stack: list[tuple[yaml.Node, int, bool, str]] = [(root, 0, False, "")]
    while stack:
        node, depth, done, path = stack.pop()
        nid = id(node)
        if done:
            on_stack.discard(nid)
            total = 1 + sum(size[id(c)] for c in children(node))
            if total > MAX_EXPANDED_NODES:
                raise YamlShapeError(
                    f"aliases expand this document to more than {MAX_EXPANDED_NODES:,} values "
                    f"(line {node.start_mark.line + 1})")
            size[nid] = total
            continue
        if nid in size:
            continue
        if nid in on_stack:
            raise YamlShapeError(
                f"recursive alias (line {node.start_mark.line + 1}): a value contains itself")
        if depth > MAX_DEPTH:
            raise YamlShapeError(
                f"nesting deeper than {MAX_DEPTH} levels (line {node.start_mark.line + 1})")
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    if key_node.value in seen:
                        key = f"{path}.{key_node.value}" if path else str(key_node.value)
                        raise YamlShapeError(
                            f"duplicate key (line {key_node.start_mark.line + 1})", key=key)
                    seen.add(key_node.value)
        on_stack.add(nid)
        stack.append((node, depth, True, path))
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                for c in (key_node, value_node):
                    if id(c) not in size:
                        sub = (f"{path}.{key_node.value}" if path else str(key_node.value)) \
                            if c is value_node and isinstance(key_node, yaml.ScalarNode) \
                            else path
                        stack.append((c, depth + 1, False, sub))
        else:
            for i, c in enumerate(children(node)):
                if id(c) not in size:
                    stack.append((c, depth + 1, False, f"{path}[{i}]"))


def safe_compose(text: str) -> tuple[yaml.SafeLoader, yaml.Node | None]:
    """Compose one document with the safe loader, guarding the composer's own recursion."""
    loader = yaml.SafeLoader(text)
    limit = sys.getrecursionlimit()
    try:
        node = loader.get_single_node()
    except RecursionError:
        loader.dispose()
        raise YamlShapeError(f"nesting deeper than {MAX_DEPTH} levels") from None
    finally:
        sys.setrecursionlimit(limit)
    if node is not None:
        check_graph(node)
    return loader, node


def safe_load(text: str, *, on_node: Callable[[yaml.Node], None] | None = None) -> object:
    """``yaml.safe_load`` with the guards above (``on_node`` may inspect the node graph)."""
    loader, node = safe_compose(text)
    try:
        if node is None:
            return None
        if on_node is not None:
            on_node(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()
