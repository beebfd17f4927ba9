"""The one reader of user YAML files (scenarios, hardware profiles) and its guards.

Why one reader: every input file must fail the same way, as an
:class:`~fedsim.errors.InputError` that names the file, the key and the line, whatever goes
wrong (missing file, a directory, bytes that are not UTF-8, a syntax error, a duplicate key, a
tag that is not plain YAML, a value that does not fit its tag, aliases that recurse or
explode, absurd nesting). :func:`read_text` is the file-opening half of it, shared with the
CSV availability-trace reader.

``yaml.safe_load`` never runs code, but a hostile or broken file can still make it recurse
forever (a self-referencing alias), exhaust the stack (thousands of nested brackets) or
expand exponentially ("billion laughs"). :func:`check_graph` walks the composed node graph
once per node (aliases are shared nodes), so its work grows with the file, not with the
expansion, and rejects each of these with a clear message.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from fedsim.errors import InputError

MAX_EXPANDED_NODES = 1_000_000
MAX_DEPTH = 200
#: Tags a configuration may carry: plain data only (``!!python/...``, ``!!binary``, ``!!set``
#: and custom tags are refused with their key, not left to the constructor).
PLAIN_TAGS = frozenset(
    "tag:yaml.org,2002:" + t
    for t in ("map", "seq", "str", "int", "float", "bool", "null", "timestamp", "merge")
)


class YamlShapeError(ValueError):
    """The document is valid YAML but not a sane configuration value."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def check_graph(root: yaml.Node) -> None:
    """Reject recursive aliases, nesting deeper than MAX_DEPTH, documents whose aliases
    expand to more than MAX_EXPANDED_NODES values, tags other than :data:`PLAIN_TAGS` and
    duplicate keys (the last two with the key path of the node)."""
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
                    f"(line {node.start_mark.line + 1})", key=path or None)
            size[nid] = total
            continue
        if nid in size:
            continue
        if nid in on_stack:
            raise YamlShapeError(
                f"recursive alias (line {node.start_mark.line + 1}): a value contains itself",
                key=path or None)
        if depth > MAX_DEPTH:
            raise YamlShapeError(
                f"nesting deeper than {MAX_DEPTH} levels (line {node.start_mark.line + 1})",
                key=(path if len(path) <= 80 else path[:77] + "...") or None)
        _check_node(node, path)
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


def _check_node(node: yaml.Node, path: str) -> None:
    """One node's own rules: a plain tag, and no key twice in a mapping (``path`` is its key)."""
    if node.tag not in PLAIN_TAGS:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        raise YamlShapeError(
            f"tag {tag!r} is not allowed (line {node.start_mark.line + 1}); a configuration "
            "is plain YAML: numbers, strings, lists and mappings", key=path or None)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    key = f"{path}.{key_node.value}" if path else str(key_node.value)
                    raise YamlShapeError(
                        f"duplicate key (line {key_node.start_mark.line + 1})", key=key)
                seen.add(key_node.value)


class _Loader(yaml.SafeLoader):
    """The safe loader, but a scalar that does not fit its tag (``!!int abc``, ``!!timestamp
    2020-13-45``) is a marked YAML error at that scalar, not a bare ValueError or KeyError."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, KeyError, OverflowError):
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {node.value!r} as {tag}", node.start_mark) from None


def safe_compose(text: str) -> tuple[yaml.SafeLoader, yaml.Node | None]:
    """Compose one document with the safe loader, guarding the composer's own recursion and
    checking the node graph (:func:`check_graph`) before anything is constructed."""
    loader = _Loader(text)
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


# ----------------------------------------------------------------------------- file reader


def _shown_path(path: str | Path) -> str:
    text = str(path)
    return text if len(text) <= 200 else text[:200] + "..."


def read_text(path: str | Path) -> str:
    """The UTF-8 text of one input file; every way that fails is an InputError naming it.

    Decoded from bytes without newline translation, so a CSV reader sees the file as is.
    """
    p = Path(path)
    try:
        if not p.exists():
            raise InputError("file not found", file=p)
        if p.is_dir():
            raise InputError("expected a file, found a directory", file=p)
        data = p.read_bytes()
    except OSError as exc:  # e.g. a name too long for the file system, no permission
        raise InputError(f"cannot read: {exc.strerror or exc}", file=_shown_path(p)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"not a text file (byte 0x{data[exc.start]:02x} on line {line} is "
                         "not UTF-8)", file=p) from None


def key_near(text: str, line: int) -> str | None:
    """Best guess of the dotted key a 0-based ``line`` belongs to, from indentation: a syntax
    error has a line but no key path, and the key is what a user searches for."""
    stack: list[tuple[int, str]] = []
    for raw in text.splitlines()[: line + 1]:
        m = re.match(r"^(\s*)(?:-\s+)?([A-Za-z_][\w.\-]*)\s*:", raw)
        if not m:
            continue
        indent = m.start(2)  # a list item's key sits after its "- "
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m.group(2)))
    return ".".join(k for _, k in stack) or None


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, path: str | Path) -> InputError:
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    if exc.context and exc.context_mark:
        where += f" ({exc.context} at line {exc.context_mark.line + 1})"
    # an unclosed flow collection or quote names its key better than where it broke
    ctx = exc.context or ""
    opened = exc.context_mark and ("flow" in ctx or "quoted" in ctx or "scalar" in ctx)
    anchor = exc.context_mark if opened else mark
    key = key_near(text, anchor.line) if anchor else None
    problem = exc.problem or str(exc).splitlines()[0]
    return InputError(f"invalid YAML{where}: {problem}", file=path, key=key)


def _reader_error(exc: yaml.reader.ReaderError, text: str, path: str | Path) -> InputError:
    line = text.count("\n", 0, exc.position)
    column = exc.position - (text.rfind("\n", 0, exc.position) + 1)
    char = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
    return InputError(f"invalid YAML at line {line + 1}, column {column + 1}: character {char} "
                      "is not allowed (a control or non-printable character)", file=path,
                      key=key_near(text, line))


def require_mapping(value: Any, what: str, *, file: str | Path | None) -> dict[str, Any]:
    """``value`` if it is a mapping; else an InputError saying the file is empty or what the
    top level holds instead (``what``: e.g. ``"scenario keys"``)."""
    if value is None:
        raise InputError(f"the file is empty; expected a mapping of {what}", file=file)
    if not isinstance(value, dict):
        raise InputError(
            f"expected a mapping of {what} at the top level, got {type(value).__name__}",
            file=file)
    return value


def read_yaml(path: str | Path, *, mapping_of: str | None = None) -> Any:
    """Safe-load one YAML file; every failure is an InputError naming the file (and the key
    and line where there is one). With ``mapping_of`` the top level must be a mapping
    (:func:`require_mapping`); an empty file is reported as such."""
    text = read_text(path)
    try:
        value = safe_load(text)
    except YamlShapeError as exc:
        raise InputError(f"invalid YAML: {exc}", file=path, key=exc.key) from None
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, text, path) from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, path) from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {str(exc).splitlines()[0]}", file=path) from None
    if mapping_of is not None:
        return require_mapping(value, mapping_of, file=path)
    return value
