"""Built-ins on strings: string, trim, upper, lower, split and join.

Rules and invariants:
- Each takes the evaluation's scope first and pays into its budget (expr.budget) for the
  characters and parts it handles, before handling them; what it builds is size-checked
  first, from its operands' lengths: `join` adds up its parts and separators, `split`
  counts its parts, `upper`/`lower` refuse a string already too long.
- `string(x)` renders lists and maps as format_value does, cut past MAX_STRING
  characters with an ellipsis; a string is returned as it is.
- `trim(s, cut)` strips the characters of `cut` from both ends; a long cut set is
  scanned in Python (a step per character), a short one by str.strip.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from analysis.expr.budget import FREE, FREE_CHARS, MAX_STRING, chars, check_list, check_string, spend
from analysis.expr.tokens import ExprError
from analysis.expr.values import format_value, go_type, kind_of

TRIM_IN_C = 16  # trim's cut set, up to this many characters, goes to str.strip (its work: text x set)


def text_arg(name: str, value: Any) -> str:
    if type(value) is str:
        return value
    raise ExprError(f"invalid argument for {name} (type {go_type(value)})")


def to_string(scope: Any, value: Any) -> str:
    if type(value) is str:
        return value
    return format_value(value, MAX_STRING, None if type(value) in (int, float, bool) else scope)


def trim(scope: Any, value: Any, cut: Any = None) -> str:
    text = text_arg("trim", value)
    if cut is None:
        if len(text) > FREE_CHARS:
            spend(scope, chars(len(text)))
        return text.strip()
    chars_set = text_arg("trim", cut)
    spend(scope, chars(len(text) + len(chars_set)))
    if len(chars_set) <= TRIM_IN_C:
        return text.strip(chars_set)
    keep = set(chars_set)
    spend(scope, len(text))  # a scan in Python: a step per character
    start, stop = 0, len(text)
    while start < stop and text[start] in keep:
        start += 1
    while stop > start and text[stop - 1] in keep:
        stop -= 1
    return text[start:stop]


def change_case(name: str, change: Callable[[str], str]) -> Callable[[Any, Any], str]:
    def run(scope: Any, value: Any) -> str:
        text = text_arg(name, value)
        check_string(len(text))  # no case mapping shortens a string
        if len(text) > FREE_CHARS:
            spend(scope, chars(len(text)))
        out = change(text)  # at most three times as long: still bounded
        check_string(len(out))
        return out

    return run


def split(scope: Any, value: Any, sep: Any) -> list[str]:
    text, by = text_arg("split", value), text_arg("split", sep)
    if len(text) > FREE_CHARS:
        spend(scope, chars(len(text)))
    count = len(text) if by == "" else text.count(by) + 1
    check_list(count, "split")
    spend(scope, 2 * count)  # a string and a slot for each part
    return list(text) if by == "" else text.split(by)


def join(scope: Any, items: Any, sep: Any = "") -> str:
    if kind_of(items) != "array":
        raise ExprError(f"invalid argument for join (type {go_type(items)})")
    if len(items) > FREE:
        spend(scope, len(items))
    parts = [text_arg("join", item) for item in items]
    glue = text_arg("join", sep)
    size = sum(map(len, parts)) + len(glue) * max(len(parts) - 1, 0)
    check_string(size)  # before the string is built
    if size > FREE_CHARS:
        spend(scope, chars(size))
    return glue.join(parts)
