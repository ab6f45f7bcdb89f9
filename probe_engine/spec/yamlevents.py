"""A matrix file's YAML built into plain values straight from libyaml's event stream.

One pass, no recursion, every limit (depth, values counted through aliases) checked as each
event arrives, so a hostile file is refused before it costs anything. Plain scalars mean what
YAML 1.2 says (scalars.py); mapping keys stay the text the user typed. Duplicate keys, aliases
to nothing, unsupported tags and unset ${NAME}s are collected, each with its position; with
`record`, the same pass notes where every value sits (yamlfile.Document asks for that only
when an error needs it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

import yaml
from yaml import events

from ..errors import SpecError
from .keypath import KeyPath, Position, dotted, position_of
from .limits import MAX_DEPTH, MAX_VALUES
from .scalars import NOT_TEXT_START as _NOT_TEXT_START
from .scalars import resolve_plain, resolve_tagged

try:
    _Parser: type = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml: slower, same result
    _Parser = yaml.SafeLoader

_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\})")
_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(f"{_CORE}{name}" for name in ("int", "float", "bool", "null"))
_PLAIN_TAGS = frozenset({None, "!", f"{_CORE}str"})
_MAP_TAGS = frozenset({None, "!", f"{_CORE}map"})
_SEQ_TAGS = frozenset({None, "!", f"{_CORE}seq"})


class _Anchor(NamedTuple):
    value: Any
    size: int  # values it stands for, aliases inside counted
    text: str | None  # a scalar's text, usable as a key


_EXPECT_KEY: Any = object()  # a mapping waiting for its next key
_MERGE: Any = object()  # the key `<<`: merge the value's mapping(s) here
_DISCARD: Any = object()  # a key already reported (duplicate, not a name): drop its value


class _Frame:
    """A mapping or list being built."""

    __slots__ = ("anchor", "is_key", "is_map", "key", "keys", "mark", "start", "value")

    def __init__(self, value: Any, is_map: bool, anchor: str | None, start: int, mark: Any):
        self.value = value
        self.is_map = is_map
        self.anchor = anchor
        self.start = start  # the value count when it began: its size is the difference
        self.mark = mark
        self.key: Any = _EXPECT_KEY
        self.is_key = False  # a list or mapping written where a key belongs: reported, dropped
        self.keys: dict[str, Any] = {}  # explicit keys -> their mark (merged keys are not)


class Builder:
    """One pass over the events: values, problems, and (with `record`) every position."""

    def __init__(self, file: str, environ: Mapping[str, str] | None, record: bool = False) -> None:
        self.file = file
        self.environ = environ  # None: ${NAME}s stay as written (what an editor sees)
        self.record = record
        self.positions: dict[KeyPath, Position] = {}
        self.key_positions: dict[KeyPath, Position] = {}
        self.problems: list[SpecError] = []
        self.replaced: list[str] = []  # fields whose value stands in for a reported problem
        self.anchors: dict[str, _Anchor] = {}
        self.open_anchors: set[str] = set()
        self.stack: list[_Frame] = []
        self.count = 0
        self.root: Any = None
        self.documents = 0
        self.lost = False  # set by _path(): the value being built sits under a dropped key

    # -- the pass ---------------------------------------------------------------------------

    def build(self, text: str) -> Any:
        parser = _Parser(text)
        try:
            self._events(parser)
        except yaml.MarkedYAMLError as exc:
            raise _syntax_error(exc, text, self.file) from None
        except yaml.reader.ReaderError as exc:
            line = text.count("\n", 0, exc.position) + 1
            column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
            code = exc.character if isinstance(exc.character, int) else ord(exc.character)
            raise SpecError(
                f"invalid YAML: the control character U+{code:04X} is not allowed in YAML text "
                '(in double quotes, write it as an escape such as "\\t")',
                file=self.file,
                line=line,
                column=column,
            ) from None
        except yaml.YAMLError as exc:
            problem = " ".join(str(exc).split())
            raise SpecError(f"invalid YAML: {problem}", file=self.file) from None
        finally:
            parser.dispose()
        return self.root

    def _events(self, parser: Any) -> None:
        get_event = parser.get_event
        Scalar, MappingStart, MappingEnd = (
            events.ScalarEvent,
            events.MappingStartEvent,
            events.MappingEndEvent,
        )
        SequenceStart, SequenceEnd, Alias = (
            events.SequenceStartEvent,
            events.SequenceEndEvent,
            events.AliasEvent,
        )
        while True:
            event = get_event()
            kind = event.__class__
            if kind is Scalar:
                self._scalar(event)
            elif kind is MappingStart or kind is SequenceStart:
                self._start(event, kind is MappingStart)
            elif kind is MappingEnd or kind is SequenceEnd:
                self._end()
            elif kind is Alias:
                self._alias(event)
            elif kind is events.DocumentStartEvent:
                self.documents += 1
                if self.documents > 1:
                    raise self._stop(
                        event.start_mark, "one matrix per file: a second YAML document starts here"
                    )
            elif kind is events.StreamEndEvent:
                return

    def _count(self, size: int, mark: Any, alias: str | None = None) -> None:
        self.count += size
        if self.count > MAX_VALUES:
            if alias is not None:
                raise self._stop(
                    mark,
                    f"the alias *{alias} stands for {size:,} values: with it the file would "
                    f"hold more than {MAX_VALUES:,} (aliases of aliases multiply)",
                )
            raise self._stop(mark, f"the file holds more than {MAX_VALUES:,} values")

    def _scalar(self, event: Any) -> None:
        # The hot path of a big file: kept flat (one call per scalar, no helpers).
        self.count += 1
        if self.count > MAX_VALUES:
            self._count(0, event.start_mark)
        stack = self.stack
        frame = stack[-1] if stack else None
        text = event.value
        if frame is not None and frame.is_map and frame.key is _EXPECT_KEY:
            self._key(frame, text, event, merge=not event.style and event.tag is None)
            if event.anchor is not None:
                self.anchors[event.anchor] = _Anchor(text, 1, text)
            return
        if event.tag is not None:
            value = self._scalar_value(event)
        elif event.style:
            value = text
            if event.style == '"' and "\x00" in text:
                self._problem(event.start_mark, "a NUL character (\\0) has no place in a matrix")
        elif text and text[0] not in _NOT_TEXT_START:
            value = text
        else:
            value = resolve_plain(text)
        if value.__class__ is str and "$" in value and self.environ is not None:
            if frame is not None and frame.key == "kind" and "${" in value:
                # The kind decides which keys are valid: an editor's schema must see it.
                self._problem(event.start_mark, "write the kind itself, not a ${VARIABLE}")
            value = self._interpolate(value, event.start_mark)
        if event.anchor is not None:
            self.anchors[event.anchor] = _Anchor(value, 1, text)
        if frame is not None and not self.record and not frame.is_map:
            frame.value.append(value)
        else:
            self._add(value, event.start_mark)

    def _scalar_value(self, event: Any) -> Any:
        tag = event.tag
        if tag in _PLAIN_TAGS:
            return event.value
        if tag in _SCALAR_TAGS:
            name = tag[len(_CORE) :]
            ok, value = resolve_tagged(name, event.value)
            if not ok:
                self._problem(event.start_mark, f"{event.value!r} is not a !!{name}")
            return value
        self._problem(event.start_mark, _unsupported_tag(tag))
        return event.value

    def _start(self, event: Any, is_map: bool) -> None:
        self._count(1, event.start_mark)
        if len(self.stack) >= MAX_DEPTH:
            raise self._stop(
                event.start_mark, f"nested more than {MAX_DEPTH} levels deep (a matrix needs 6)"
            )
        if event.tag not in (_MAP_TAGS if is_map else _SEQ_TAGS):
            self._problem(event.start_mark, _unsupported_tag(event.tag))
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        frame = _Frame({} if is_map else [], is_map, event.anchor, self.count, event.start_mark)
        if self.stack and self.stack[-1].is_map and self.stack[-1].key is _EXPECT_KEY:
            parent = self.stack[-1]
            self._problem(event.start_mark, "a key must be a name, not a list or a mapping")
            parent.key = _DISCARD
            frame.is_key = True
        self.stack.append(frame)

    def _end(self) -> None:
        frame = self.stack.pop()
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = _Anchor(frame.value, self.count - frame.start + 1, None)
        if not frame.is_key:  # a key's value follows it, and is dropped with it
            self._add(frame.value, frame.mark)

    def _alias(self, event: Any) -> None:
        name = event.anchor
        mark = event.start_mark
        anchor = self.anchors.get(name)
        if anchor is None:
            self._count(1, mark)
            if name in self.open_anchors:
                self._problem(mark, f"*{name} is inside the value it names: a recursive alias")
            else:
                self._problem(mark, f"*{name} names no anchor (define &{name} before it)")
            anchor = _Anchor(None, 1, None)
        else:
            self._count(anchor.size, mark, alias=name)
        frame = self.stack[-1] if self.stack else None
        if frame is not None and frame.is_map and frame.key is _EXPECT_KEY:
            if anchor.text is None:
                self._problem(mark, f"*{name} cannot be a key: it names a list or a mapping")
                frame.key = _DISCARD
            else:
                self._key(frame, anchor.text, event, merge=False)
            return
        self._add(anchor.value, mark)

    # -- mappings ---------------------------------------------------------------------------

    def _key(self, frame: _Frame, key: str, event: Any, merge: bool) -> None:
        mark = event.start_mark
        if merge and key == "<<":
            frame.key = _MERGE
            return
        first = frame.keys.get(key)
        if first is not None:
            self._problem(
                mark,
                f"duplicate key {key!r} (first at line {first.line + 1})",
                (*self._path(), key),
                replaced=False,  # the first one stands, and is validated
            )
            frame.key = _DISCARD
            return
        frame.keys[key] = mark
        frame.key = key
        if self.record:
            path = self._path()
            if not self.lost:
                key_path = (*path, key)  # mypy takes (*a, b) inside [] for 3.11 syntax
                self.key_positions[key_path] = position_of(mark)

    def _add(self, value: Any, mark: Any) -> None:
        """A finished value, into the mapping or list that holds it (or as the root)."""
        if not self.stack:
            self.root = value
            if self.record:
                self.positions[()] = position_of(mark)
            return
        frame = self.stack[-1]
        if not frame.is_map:
            if self.record:
                self._record((*self._path(), len(frame.value)), mark)
            frame.value.append(value)
            return
        key = frame.key
        frame.key = _EXPECT_KEY
        if key.__class__ is str:
            if self.record:
                self._record((*self._path(), key), mark)
            frame.value[key] = value  # an explicit key wins over a merged one
        elif key is _MERGE:
            self._merge(frame, value, mark)

    def _merge(self, frame: _Frame, value: Any, mark: Any) -> None:
        merged = value if isinstance(value, list) else [value]
        if not all(isinstance(item, dict) for item in merged):
            self._problem(mark, "<< merges a mapping, or a list of mappings, into this one")
            return
        for item in merged:
            for key, item_value in item.items():
                if key not in frame.keys and key not in frame.value:
                    frame.value[key] = item_value
                    if self.record:
                        path = (*self._path(), key)
                        if not self.lost:  # a merged key is shown where it is merged
                            self.positions.setdefault(path, position_of(mark))
                            self.key_positions.setdefault(path, position_of(mark))

    def _record(self, path: KeyPath, mark: Any) -> None:
        if not self.lost:
            self.positions[path] = position_of(mark)

    def _path(self) -> KeyPath:
        """The path of the innermost mapping or list (the frames' current keys and indices).

        A mapping merged with `<<` (and the list of them) adds nothing: its keys land in the
        mapping that merges them. Inside a dropped value (a duplicate key's) the path stops
        where the drop is, and `self.lost` says so."""
        path: list[str | int] = []
        after_merge = False
        self.lost = False
        for parent in self.stack[:-1]:
            if parent.is_map:
                key = parent.key
                if key is _MERGE:
                    after_merge = True
                    continue
                if key.__class__ is not str:
                    self.lost = True
                    break
                path.append(key)
            elif not after_merge:
                path.append(len(parent.value))
            after_merge = False
        return tuple(path)

    # -- values -----------------------------------------------------------------------------

    def _interpolate(self, text: str, mark: Any) -> str:
        environ = self.environ or {}

        def substitute(match: re.Match[str]) -> str:
            name = match.group("name")
            if name is None:
                return "$"  # "$$" is a literal dollar
            value = environ.get(name)
            default = match.group("default")
            if value is None or (value == "" and default is not None):
                if default is not None:
                    return default
                self._problem(
                    mark,
                    f"environment variable {name} is not set "
                    f"(write ${{{name}:-default}} for a fallback)",
                )
                return ""
            return value

        return _VARIABLE.sub(substitute, text)

    def _problem(
        self, mark: Any, message: str, path: KeyPath | None = None, *, replaced: bool = True
    ) -> None:
        """Keep a problem. `replaced`: the value here is not what the user meant (an unset
        variable left empty...), so validation's complaints about it would only repeat this."""
        if self.record:
            return
        if path is None:
            path = (*self._path(), *self._pending())
        where = position_of(mark)
        self.problems.append(
            SpecError(
                message,
                file=self.file,
                line=where.line,
                column=where.column,
                field=dotted(path) or None,
            )
        )
        if replaced:
            self.replaced.append(dotted(path))

    def _pending(self) -> KeyPath:
        """The key or index the innermost frame is filling now, if it has one."""
        if not self.stack:
            return ()
        frame = self.stack[-1]
        if frame.is_map:
            return (frame.key,) if frame.key.__class__ is str else ()
        return (len(frame.value),)

    def _stop(self, mark: Any, message: str) -> SpecError:
        where = position_of(mark)
        return SpecError(message, file=self.file, line=where.line, column=where.column)


def _unsupported_tag(tag: str) -> str:
    shown = "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag
    return (
        f"the tag {shown} is not supported here "
        "(a matrix holds text, numbers, true/false, null, lists and mappings)"
    )


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, file: str) -> SpecError:
    mark = exc.problem_mark or exc.context_mark
    problem = " ".join(filter(None, [exc.problem, exc.context and f"({exc.context})"]))
    message = f"invalid YAML: {problem}"
    if mark is not None and _tab_near(text, mark.line, mark.column):
        message += (
            "; the line holds a tab: YAML indents with spaces only, replace each tab by spaces"
        )
    return SpecError(
        message,
        file=file,
        line=mark.line + 1 if mark else None,
        column=mark.column + 1 if mark else None,
    )


def _tab_near(text: str, line: int, column: int) -> bool:
    lines = text.splitlines()
    if 0 <= line < len(lines):
        return "\t" in lines[line][: column + 1] or lines[line][column : column + 1] == "\t"
    return False
