r"""Position labels: which part of the output format a position of an answer is.

A label is ``"<where> <kind>"``, a function of the answer's prefix and of what the contract
allows next, so that positions with the same structural role pool together:

* JSON answers (every JSON-schema contract, and grammars or regexes made with
  ``json_labels=True``; a prefix that stops being JSON falls back to the next rule):
  ``where`` is the JSONPath of the value the position belongs to (``$``, ``$.ranking``,
  ``$.ranking[3]``, ``$["a key"]``) and ``kind`` one of

  ============== ===========================================================================
  ``value``      a value starts here (``$`` at the first answer position)
  ``key``        an object key starts, or is being written (path of the object)
  ``colon``      the ``:`` after a key
  ``string``     inside a string value
  ``number``     inside a number that may still go on
  ``literal``    inside ``true``, ``false`` or ``null``
  ``comma``      after a value in an array or object, where only ``,`` may follow
  ``close``      there, where only the closing bracket may follow
  ``comma or close``  there, where both may
  ``end``        after the whole document: only whitespace or a stop token
  ============== ===========================================================================

  ``comma`` / ``close`` positions carry the path of their container (all separators of an
  array pool), and a number that the contract allows to go no further (no digit, ``.``,
  ``e`` may follow) is labelled as the ``comma`` / ``close`` position it already is.
* Other contracts: ``next <chars>``, the bytes the contract allows next (``next [0-9]``,
  ``next '-'``, ``next <stop>``), read from the single-byte tokens of the vocabulary; where
  the vocabulary has none, ``token <t>``, the position's index in the answer.

What the contract allows is read from the position's token mask through :class:`Probe`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = ["JsonCursor", "Probe", "label"]

_WS = frozenset(b" \t\n\r")
_NUMBER = frozenset(b"0123456789+-.eE")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Probe:
    """Which single bytes the contract allows next, read from a position's packed bitmask.

    Parameters
    ----------
    single : dict of int to int
        Byte value -> id of a token whose text is exactly that byte.
    stop_ids : sequence of int
        Stop tokens.
    """

    def __init__(self, single: dict[int, int], stop_ids: Sequence[int]) -> None:
        self.bytes_ = np.array(sorted(single), dtype=np.int64)
        self.ids = np.array([single[b] for b in self.bytes_], dtype=np.int64)
        self.stop_ids = np.asarray(list(stop_ids), dtype=np.int64)
        self.single = dict(single)
        self._where = {b: (t >> 5, t & 31) for b, t in single.items()}  # (word, bit)

    @staticmethod
    def _bits(row: NDArray[np.int32], ids: NDArray[np.int64]) -> NDArray[np.bool_]:
        words = row.view(np.uint32)[ids >> 5]
        return ((words >> (ids & 31).astype(np.uint32)) & 1).astype(bool)

    def allows(self, row: NDArray[np.int32], byte: int) -> bool | None:
        """Whether the byte may come next; ``None`` when no single-byte token has it."""
        where = self._where.get(byte)
        if where is None:
            return None
        return bool(int(row[where[0]]) >> where[1] & 1)  # int32 sign bits shift as two's complement

    def allowed(self, row: NDArray[np.int32]) -> tuple[NDArray[np.int64], bool]:
        """The bytes allowed next (of those with a single-byte token), and whether a stop
        token is."""
        return (self.bytes_[self._bits(row, self.ids)],
                bool(self._bits(row, self.stop_ids).any()))


@dataclass
class _Frame:
    array: bool
    path: str
    index: int = 0
    key: bytearray = field(default_factory=bytearray)


class JsonCursor:
    """Where a JSON prefix stands, fed byte by byte; ``broken`` once the text is not JSON.

    ``mode`` is one of ``value``, ``first_value`` (just after ``[``), ``key``,
    ``first_key`` (just after ``{``), ``key_text``, ``colon``, ``string``, ``number``,
    ``literal``, ``after`` (after a value inside a container), ``end`` and ``broken``.
    """

    def __init__(self) -> None:
        self.stack: list[_Frame] = []
        self.mode = "value"
        self.escaped = False

    @property
    def broken(self) -> bool:
        return self.mode == "broken"

    def value_path(self) -> str:
        """Path of the value the cursor is in or about to start."""
        if not self.stack:
            return "$"
        top = self.stack[-1]
        if top.array:
            return f"{top.path}[{top.index}]"
        return _child(top.path, bytes(top.key))

    def container_path(self) -> str:
        return self.stack[-1].path if self.stack else "$"

    def feed(self, data: bytes) -> None:
        for ch in data:
            if self.mode == "broken":
                return
            self._step(ch)

    def _step(self, ch: int) -> None:
        mode = self.mode
        if mode in ("string", "key_text"):
            if ch == 0x22 and not self.escaped:  # the closing quote
                self.mode = "colon" if mode == "key_text" else self.mode
                if mode == "string":
                    self._value_done()
                return
            self.escaped = ch == 0x5C and not self.escaped  # a backslash escapes the next byte
            if mode == "key_text":
                self.stack[-1].key.append(ch)
            return
        if mode == "number" and ch in _NUMBER or mode == "literal" and 0x61 <= ch <= 0x7A:
            return
        if mode in ("number", "literal"):
            self._value_done()
            self._step(ch)
            return
        if ch in _WS:
            return
        if mode in ("value", "first_value"):
            self._start_value(ch, mode == "first_value")
        elif mode in ("key", "first_key"):
            if ch == 0x22:
                self.stack[-1].key = bytearray()
                self.mode = "key_text"
            elif ch == 0x7D and mode == "first_key":  # {}
                self.stack.pop()
                self._value_done()
            else:
                self.mode = "broken"
        elif mode == "colon":
            self.mode = "value" if ch == 0x3A else "broken"
        elif mode == "after":
            self._after(ch)
        else:  # end
            self.mode = "broken"

    def _start_value(self, ch: int, first: bool) -> None:
        if ch == 0x7B:
            self.stack.append(_Frame(False, self.value_path()))
            self.mode = "first_key"
        elif ch == 0x5B:
            self.stack.append(_Frame(True, self.value_path()))
            self.mode = "first_value"
        elif ch == 0x22:
            self.mode = "string"
        elif ch == 0x2D or 0x30 <= ch <= 0x39:
            self.mode = "number"
        elif ch in b"tfn":
            self.mode = "literal"
        elif ch == 0x5D and first:  # []
            self.stack.pop()
            self._value_done()
        else:
            self.mode = "broken"

    def _after(self, ch: int) -> None:
        top = self.stack[-1]
        if ch == 0x2C:
            if top.array:
                top.index += 1
                self.mode = "value"
            else:
                self.mode = "key"
        elif ch == (0x5D if top.array else 0x7D):
            self.stack.pop()
            self._value_done()
        else:
            self.mode = "broken"

    def _value_done(self) -> None:
        self.mode = "after" if self.stack else "end"


def _child(path: str, key: bytes) -> str:
    text = key.decode("utf-8", errors="replace")
    return f"{path}.{text}" if _IDENT.fullmatch(text) else f'{path}["{text}"]'


def label(cursor: JsonCursor | None, row: NDArray[np.int32], probe: Probe, step: int) -> str:
    """The label of a position (module docstring): from the JSON cursor of its prefix where
    the answer is JSON so far, else from the bytes the contract allows next.

    ``row`` is the position's packed token bitmask (int32 words, bit ``t`` = token ``t``).
    """
    if cursor is not None and not cursor.broken:
        return _json_label(cursor, row, probe)
    allowed, stop = probe.allowed(row)
    if not allowed.size and not stop and not probe.single:
        return f"token {step}"
    return "next " + _char_class(allowed, stop)


def _json_label(cursor: JsonCursor, row: NDArray[np.int32], probe: Probe) -> str:
    mode = cursor.mode
    if mode == "number" and not any(probe.allows(row, b) for b in b"0123456789.eE"):
        mode = "after" if cursor.stack else "end"  # the number cannot go on
    if mode in ("value", "first_value"):
        return f"{cursor.value_path()} value"
    if mode in ("key", "first_key", "key_text"):
        return f"{cursor.container_path()} key"
    if mode in ("string", "number", "literal"):
        return f"{cursor.value_path()} {mode}"
    if mode == "colon":
        return f"{cursor.value_path()} colon"
    if mode == "end":
        return "$ end"
    top = cursor.stack[-1]
    comma = probe.allows(row, 0x2C)
    close = probe.allows(row, 0x5D if top.array else 0x7D)
    kind = ("comma" if comma and close is False else
            "close" if close and comma is False else "comma or close")
    return f"{top.path} {kind}"


def _char_class(allowed: NDArray[np.int64], stop: bool) -> str:
    """``[0-9a-f]``, ``','``, ``<stop>`` ... for a set of bytes and the stop flag."""
    parts = []
    if allowed.size > 128:
        missing = sorted(set(range(256)) - set(allowed.tolist()))
        parts.append("any byte" + (f" but {_ranges(missing)}" if missing else ""))
    elif allowed.size == 1:
        parts.append(repr(chr(int(allowed[0]))))
    elif allowed.size:
        parts.append(_ranges(allowed.tolist()))
    if stop:
        parts.append("<stop>")
    return " or ".join(parts) if parts else "nothing"


def _ranges(values: list[int]) -> str:
    out, i = [], 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        lo, hi = _show(values[i]), _show(values[j])
        out.append(lo if i == j else f"{lo}{hi}" if j == i + 1 else f"{lo}-{hi}")
        i = j + 1
    return "[" + "".join(out) + "]"


def _show(b: int) -> str:
    ch = chr(b)
    if ch in "]\\-^":
        return "\\" + ch
    return ch if 0x21 <= b < 0x7F else f"\\x{b:02x}"
