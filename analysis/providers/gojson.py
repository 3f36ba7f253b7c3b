"""JSON text as Go's encoding/json.Marshal writes it: the web provider's `measurement.value`.

Rules (Argo's metricproviders/webmetric getValue marshals the jsonPath result with json.Marshal):
- Numbers are float64s (what json.Unmarshal into `any` gives): integral values without a
  fraction (`1`, not `1.0`), the shortest text that reads back to the same float, `e`
  notation only below 1e-6 or from 1e21 on (`1e-7`, `1e+21`), as encoding/json's floatEncoder.
  NaN and ±Inf have no JSON text: ValueError (Go's UnsupportedValueError, an Error measurement).
- Strings are quoted with Go's escapes: `\\"`, `\\\\`, `\\b \\f \\n \\r \\t`, other control characters
  as `\\u00XX`, and the HTML-safe escapes `<` `>` `&` as `\\u003c \\u003e \\u0026`, U+2028/U+2029 as
  `\\u2028 \\u2029`; other non-ASCII text is written as is; a lone surrogate becomes U+FFFD.
- Objects have their keys sorted, no spaces anywhere; `true`, `false`, `null`.
- Iterative (an explicit stack), so any depth the JSON reader allowed is written without recursion.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_HTML_CHARS = re.compile("[<>&\u2028\u2029]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def marshal(value: Any) -> str:
    """`value` (decoded JSON: dict, list, str, float, int, bool, None) as json.Marshal's text."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Piece):
            out.append(item.text)
        elif isinstance(item, dict):
            pieces: list[Any] = [_Piece("{")]
            for index, key in enumerate(sorted(item)):
                pieces += [_Piece(("," if index else "") + string(str(key)) + ":"), item[key]]
            stack.extend(reversed([*pieces, _Piece("}")]))
        elif isinstance(item, list | tuple):
            pieces = [_Piece("[")]
            for index, element in enumerate(item):
                pieces += ([_Piece(",")] if index else []) + [element]
            stack.extend(reversed([*pieces, _Piece("]")]))
        else:
            out.append(scalar(item))
    return "".join(out)


class _Piece:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return number(float(value))
    if isinstance(value, str):
        return string(value)
    return string(str(value))


def number(value: float) -> str:
    """A float64 as encoding/json writes it."""
    if not math.isfinite(value):
        raise ValueError(f"json: unsupported value: {value}")
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    shortest = Decimal(repr(value))  # the shortest digits that read back to `value`
    if 1e-6 <= abs(value) < 1e21:
        text = format(shortest, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    text = format(shortest, "e")  # 1e-7, 1.5e+21: Go's 'e' format with e-07 cleaned to e-7
    mantissa, exponent = text.split("e")
    sign, digits = exponent[0], exponent[1:].lstrip("0") or "0"
    if len(digits) < 2 and sign == "+":
        digits = digits.rjust(2, "0")
    return f"{mantissa}e{sign}{digits}"


def string(text: str) -> str:
    text = _SURROGATE.sub("\ufffd", text)
    quoted = json.dumps(text, ensure_ascii=False)
    return _HTML_CHARS.sub(lambda m: _HTML[m.group(0)], quoted)
