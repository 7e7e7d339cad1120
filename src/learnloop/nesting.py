"""JSON nesting depth, measured within a bound: of raw JSON text before it is parsed, and of a
parsed value. Deeply nested JSON costs a recursive parser or serializer its stack (Python's
``json`` and Pydantic stop near 1,000 and 255 levels, with an error that became a 500), so
learnloop refuses it at the edge and at intake, and reads what is already stored defensively.

Depth counts containers: ``1`` and ``"a"`` have depth 0, ``[]`` and ``{"a": 1}`` depth 1,
``{"a": [1]}`` depth 2.
"""

from __future__ import annotations

import json
import re
from typing import Any

# A JSON string, escapes included (unrolled: no backtracking per character).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# An opening bracket becomes +1 and a closing one -1 (as a signed byte); other bytes go.
_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")

# How deep stored JSON (feedback metadata) may nest and still be handed to readers as a value:
# far below what serializers choke on (Pydantic: 255), far above what intake accepts.
STORED_JSON_DEPTH = 64


def text_too_deep(raw: bytes, limit: int) -> bool:
    """Whether JSON text nests containers deeper than ``limit``, without parsing it.

    Text with at most ``limit`` opening brackets is answered at once (most requests). Else
    strings are cut out (a bracket inside one does not count), brackets become +1 / -1 and
    the deepest point of their running sum is the depth: C-speed passes, O(n) whatever the
    shape. Text that is not balanced JSON is left for the parser to refuse."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    signs = _STRING.sub(b"", raw).translate(_SIGNS, _NOT_BRACKETS)
    if b"\x01" * (limit + 1) in signs:
        return True  # a run of opening brackets: the usual shape of an attack
    if signs.count(b"\x01") <= limit:
        return False
    import numpy as np  # loaded by every model family already; only needed here

    depth = np.cumsum(np.frombuffer(signs, dtype=np.int8), dtype=np.int32).max()
    return bool(depth > limit)


def value_too_deep(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value (dicts, lists, scalars) nests deeper than ``limit``.
    Iterative, and stops at the first container past the limit."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list | tuple))
    return False


def readable_json(value: Any, limit: int = STORED_JSON_DEPTH) -> Any:
    """A stored JSON value as readers may handle it: the value itself, or, when it nests
    deeper than ``limit`` (stored before intake refused such), a shallow stand-in that keeps
    it as JSON text, so a reader, an export or a snapshot never fails on it."""
    if not isinstance(value, dict | list) or not value_too_deep(value, limit):
        return value
    try:
        text: str | None = json.dumps(value)
    except (RecursionError, ValueError):
        text = None
    return {"unreadable": f"nested deeper than {limit} levels; kept as JSON text", "json": text}
