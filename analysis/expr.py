"""The condition language of successCondition/failureCondition, and a measurement's verdict.

Rules and invariants:
- Syntax and semantics are expr-lang's as Argo Rollouts uses it (argo-rollouts.md §3.4, §4).
  User text is tokenized and parsed by `analysis.expr_parse` into our own nodes, then
  compiled ONCE into a tree of Python closures; it never reaches eval/exec/compile/ast.
- `compile_expr(text)` is cached; `Expression.evaluate(env)` only runs closures. A compiled
  expression keeps no per-run state, so one Expression may be evaluated from many threads.
- Typing follows expr's checker, which types each variable from its concrete Go value:
  literals, variables, Argo's helpers (`asInt` is int, `asFloat` float64) and arithmetic on
  those are "typed"; elements of lists and maps (`result[0]`, `result.a`, `#`) are "any".
  `==`/`!=` between typed operands of incompatible types is an error
  (`asFloat(result) == "1.1"`); with an "any" operand it is simply false. Ordering,
  arithmetic and `&&` on mismatched types are always errors. A list `result` is typed
  []interface{} here (Argo's Prometheus provider has []float64), so `result[0] == "x"` is
  false here where Argo reports a type error.
- Errors are ExprError with a clear message. Anything wrong with the text itself (syntax,
  unknown name or function, argument count, typed mismatch) is ExprSyntaxError with a
  position, raised by compile_expr. Indexing an empty or nil `result` says
  "result is empty: the query returned no series".
- Bounded: text <= 4096 chars and nesting <= 64 (expr_parse); strings <= MAX_STRING chars;
  ranges <= MAX_LIST items. Loops are the only way to multiply work, so an expression with
  nested predicates, ranges, or size-proportional work inside a predicate (`in`, `==` on
  lists, slices, string and list functions) gets a budget of MAX_STEPS units per
  evaluation: one per element iterated, and inside loops one per element (or 16 string
  characters) of every operand. `**` beyond float64 range is an error (Go gives +Inf) and
  integers stay within int64 (Go wraps around): both deliberate, named in the tests.
  `matches` is refused: Python regular expressions cannot be bounded in time.
- Argo quirks kept: `isNil(x)` and `default(x, d)` ignore x and look at the top-level
  `result`; no conditions at all means Successful; failure wins when both conditions hold.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from analysis.expr_parse import (
    Array, Binary, Call, Cond, ExprError, ExprSyntaxError, Lit, MapLit, Member, Name, Node,
    Pointer, Predicate, Slice, Unary, parse,
)  # fmt: skip

__all__ = [
    "Expression", "ExprError", "ExprSyntaxError", "MeasurementPhase", "Verdict",
    "check_syntax", "compile_expr", "eval_condition", "evaluate_condition", "format_value",
]  # fmt: skip

MAX_STRING = 100_000
MAX_LIST = 100_000
MAX_STEPS = 1_000_000
INT64 = 2**63
RESULT_ONLY = frozenset({"result"})
EMPTY_RESULT = "result is empty: the query returned no series"
NO_DATA = "metric result is nil or empty: no data returned from the metric provider"

Env = Mapping[str, Any]
Fn = Callable[[Any], Any]
_ITEM, _INDEX, _BUDGET = "#", "#index", "#budget"  # scope keys no identifier can spell
_NOTHING = object()
_KIND = {type(None): "nil", bool: "bool", int: "int", float: "float", str: "string",
         list: "array", tuple: "array", dict: "map"}  # fmt: skip
_GO = {"nil": "nil", "bool": "bool", "int": "int", "float": "float64", "string": "string",
       "array": "[]interface {}", "map": "map[string]interface {}"}  # fmt: skip
_GO_FLOAT = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)", re.I | re.A)
_CMP = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}


def kind_of(value: object) -> str:
    kind = _KIND.get(type(value))
    if kind is None:
        kind = "map" if isinstance(value, Mapping) else type(value).__name__
    return kind


def go_type(value: object) -> str:
    kind = kind_of(value)
    return _GO.get(kind, kind)


def _is_num(value: object) -> bool:
    return type(value) is float or type(value) is int


# ---------------------------------------------------------------- runtime operations


def equal(a: Any, b: Any) -> bool:
    """expr's runtime.Equal: numbers by value, lists and maps deeply, other mismatches false."""
    ta, tb = type(a), type(b)
    if ta is tb and ta is not list and ta is not dict:
        return bool(a == b)
    if _is_num(a) and _is_num(b):
        return bool(a == b)
    ka, kb = kind_of(a), kind_of(b)
    if ka == kb == "array":
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if ka == kb == "map":
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return False


def _mismatch(op: str, a: Any, b: Any) -> ExprError:
    return ExprError(f"invalid operation: {op} (mismatched types {go_type(a)} and {go_type(b)})")


def order(op: str, a: Any, b: Any) -> bool:
    if (_is_num(a) and _is_num(b)) or (type(a) is str and type(b) is str):
        return bool(_CMP[op](a, b))
    raise _mismatch(op, a, b)


def _int_result(op: str, value: int) -> int:
    if -INT64 <= value < INT64:
        return value
    raise ExprError(f"integer overflow in {op}: the result does not fit in int64")


def add(a: Any, b: Any) -> object:
    if type(a) is int and type(b) is int:
        return _int_result("+", a + b)
    if _is_num(a) and _is_num(b):
        return float(a) + float(b)
    if type(a) is str and type(b) is str:
        if len(a) + len(b) > MAX_STRING:
            raise ExprError(f"string longer than {MAX_STRING} characters")
        return a + b
    raise _mismatch("+", a, b)


def _arith(op: str, fn: Callable[[Any, Any], Any]) -> Callable[[object, object], object]:
    def run(a: Any, b: Any) -> object:
        if type(a) is int and type(b) is int:
            return _int_result(op, fn(a, b))
        if _is_num(a) and _is_num(b):
            return fn(float(a), float(b))
        raise _mismatch(op, a, b)

    return run


def divide(a: Any, b: Any) -> float:
    if not (_is_num(a) and _is_num(b)):
        raise _mismatch("/", a, b)
    x, y = float(a), float(b)
    if y == 0.0:
        return math.nan if x == 0.0 or math.isnan(x) else math.copysign(math.inf, x)
    return x / y


def modulo(a: Any, b: Any) -> int:
    if not (type(a) is int and type(b) is int):
        raise _mismatch("%", a, b)
    if b == 0:
        raise ExprError("integer divide by zero")
    rem = abs(a) % abs(b)  # Go truncates: the remainder takes the dividend's sign
    return -rem if a < 0 else rem


def power(a: Any, b: Any) -> float:
    if not (_is_num(a) and _is_num(b)):
        raise _mismatch("**", a, b)
    x, y = float(a), float(b)
    try:
        return math.pow(x, y)
    except OverflowError:
        raise ExprError(f"{format_value(a)} ** {format_value(b)} is too large for float64") from None
    except ValueError:  # 0 ** -1 is +Inf in Go, (-8) ** 0.5 is NaN
        return math.inf if x == 0.0 else math.nan


def make_range(a: Any, b: Any) -> list[int]:
    if not (type(a) is int and type(b) is int):
        raise _mismatch("..", a, b)
    if b - a + 1 > MAX_LIST:
        raise ExprError(f"range {a}..{b} has more than {MAX_LIST} elements")
    return list(range(a, b + 1))


def contained(a: Any, b: Any) -> bool:
    """`a in b`: list membership by equal(), map key presence; `in nil` is false."""
    kind = kind_of(b)
    if kind == "array":
        return any(equal(item, a) for item in b)
    if kind == "map":
        if type(a) is not str:
            raise ExprError(f"cannot use {go_type(a)} as a key of {go_type(b)}")
        return a in b
    if b is None:
        return False
    raise ExprError(f'operator "in" not defined on {go_type(b)}')


def _strings(op: str, fn: Callable[[str, str], bool]) -> Callable[[object, object], bool]:
    def run(a: Any, b: Any) -> bool:
        if type(a) is str and type(b) is str:
            return fn(a, b)
        raise _mismatch(op, a, b)

    return run


BINARY: dict[str, Callable[[object, object], object]] = {
    "==": equal, "!=": lambda a, b: not equal(a, b), "+": add, "/": divide, "%": modulo,
    "-": _arith("-", operator.sub), "*": _arith("*", operator.mul), "**": power,
    "..": make_range, "in": contained, "contains": _strings("contains", operator.contains),
    "startsWith": _strings("startsWith", str.startswith),
    "endsWith": _strings("endsWith", str.endswith),
    **{op: functools.partial(order, op) for op in _CMP},
}  # fmt: skip


def fetch(obj: Any, key: Any, *, from_result: bool = False) -> object:
    """`obj[key]` / `obj.key` with expr's rules: negative indexes count from the end,
    a missing map key is nil, anything out of range or on nil is an error."""
    kind = kind_of(obj)
    if kind == "map":
        if type(key) is not str:
            raise ExprError(f"cannot use {go_type(key)} to get an element from {go_type(obj)}")
        return obj.get(key)
    if kind in ("array", "string"):
        if type(key) is not int:
            raise ExprError(f"array elements can only be selected using an integer (got {go_type(key)})")
        size = len(obj)
        if size == 0 and from_result:
            raise ExprError(EMPTY_RESULT)
        index = key + size if key < 0 else key
        if not 0 <= index < size:
            raise ExprError(f"index out of range: {index} (array length is {size})")
        return obj[index]
    if obj is None:
        if from_result:
            raise ExprError(EMPTY_RESULT)
        raise ExprError(f"cannot fetch {key} from nil")
    if type(key) is str:
        raise ExprError(f"type {go_type(obj)} has no field {key}")
    raise ExprError(f"cannot fetch {format_value(key)} from {go_type(obj)}")


def slice_of(obj: Any, lo: Any, hi: Any) -> object:
    if kind_of(obj) not in ("array", "string"):
        raise ExprError(f"cannot slice {go_type(obj)}")
    size = len(obj)
    bounds = []
    for value, default in ((lo, 0), (hi, size)):
        if value is None:
            value = default
        elif type(value) is not int:
            raise ExprError(f"non-integer slice index {go_type(value)}")
        value = value + size if value < 0 else value
        bounds.append(min(max(value, 0), size))
    start, stop = bounds
    return obj[min(start, stop) : stop]


def charge(env: Any, steps: int) -> None:
    budget = env[_BUDGET]
    budget[0] -= steps
    if budget[0] < 0:
        raise ExprError(f"evaluation exceeded its budget of {MAX_STEPS} steps")


def truth(value: Any, what: str) -> bool:
    if value is True or value is False:
        return value
    raise ExprError(f"{what} must be bool, got {go_type(value)}")


# ---------------------------------------------------------------- formatting


def format_value(value: Any, limit: int = 200) -> str:
    """A short Go-like rendering for messages: 10, 0.93, NaN, +Inf, [10,11], "OK", nil."""
    text = _format(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _format(value: Any) -> str:
    if value is None:
        return "nil"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is float:
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if type(value) is str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    kind = kind_of(value)
    if kind == "array":
        return "[" + ",".join(_format(v) for v in value) + "]"
    if kind == "map":
        items = value.items()
        return "{" + ",".join(f"{_format(str(k))}:{_format(v)}" for k, v in items) + "}"
    return str(value)



# ---------------------------------------------------------------- built-in functions


def _number(name: str, value: Any) -> int | float:
    if _is_num(value):
        number: int | float = value
        return number
    raise ExprError(f"invalid argument for {name} (type {go_type(value)})")


def _numbers(name: str, args: Any) -> list[int | float]:
    """The numbers in `args`, arrays flattened, as expr's max/min/mean/median take them."""
    out: list[int | float] = []
    for arg in args:
        if type(arg) is float or type(arg) is int:
            out.append(arg)
        elif kind_of(arg) == "array":
            out.extend(_numbers(name, arg))
        else:
            raise ExprError(f"invalid argument for {name} (type {go_type(arg)})")
    return out


def as_int(value: Any) -> int:
    """Argo's asInt: numbers truncate toward zero, strings parse as base-10 integers."""
    if _is_num(value) and math.isfinite(value):
        return _int_result("asInt", int(value))
    if type(value) is str:
        digits = value[1:] if value[:1] in "+-" else value
        if digits.isascii() and digits.isdigit():
            if -INT64 <= int(value) < INT64:
                return int(value)
            raise ExprError(f'strconv.ParseInt: parsing "{value}": value out of range')
        raise ExprError(f'strconv.ParseInt: parsing "{value}": invalid syntax')
    raise ExprError(f"could not convert {format_value(value)} to int")


def as_float(value: Any) -> float:
    """Argo's asFloat: numbers as they are, strings parsed with Go's ParseFloat rules."""
    if _is_num(value):
        return float(value)
    if type(value) is str:
        if not _GO_FLOAT.fullmatch(value):
            raise ExprError(f'strconv.ParseFloat: parsing "{value}": invalid syntax')
        number = float(value)
        if math.isinf(number) and "inf" not in value.lower():
            raise ExprError(f'strconv.ParseFloat: parsing "{value}": value out of range')
        return number
    raise ExprError(f"could not convert {format_value(value)} to float")


def _float_test(name: str, test: Callable[[float], bool]) -> Callable[[object], bool]:
    def run(value: Any) -> bool:
        if _is_num(value):
            return test(float(value))
        raise ExprError(f"cannot use {go_type(value)} as argument (type float64) to call {name}")

    return run


def _length(value: Any) -> int:
    if type(value) is list or type(value) is str or kind_of(value) in ("array", "map", "string"):
        return len(value)
    raise ExprError(f"invalid argument for len (type {go_type(value)})")


def _rounding(name: str, fn: Callable[[float], float]) -> Callable[[object], float]:
    def run(value: Any) -> float:
        x = float(_number(name, value))
        return float(fn(x)) if math.isfinite(x) else x

    return run


def _go_round(x: float) -> float:
    """Go's math.Round: half away from zero (Python's round() is half to even)."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def _to_int(value: Any) -> int:
    if type(value) is str:
        try:
            return as_int(value)
        except ExprError:
            raise ExprError(f"invalid operation: int({value})") from None
    return as_int(_number("int", value))


def _to_float(value: Any) -> float:
    if type(value) is str:
        try:
            return as_float(value)
        except ExprError:
            raise ExprError(f"invalid operation: float({value})") from None
    return float(_number("float", value))


def _text(name: str, value: Any) -> str:
    if type(value) is str:
        return value
    raise ExprError(f"invalid argument for {name} (type {go_type(value)})")


def _split(text: Any, sep: Any) -> list[str]:
    a, b = _text("split", text), _text("split", sep)
    return list(a) if b == "" else a.split(b)


def _join(items: Any, sep: Any = "") -> str:
    if kind_of(items) != "array":
        raise ExprError(f"invalid argument for join (type {go_type(items)})")
    parts = [_text("join", item) for item in items]
    out = _text("join", sep).join(parts)
    if len(out) > MAX_STRING:
        raise ExprError(f"string longer than {MAX_STRING} characters")
    return out


def _extreme(name: str, pick: Callable[..., Any]) -> Callable[..., object]:
    def run(*args: Any) -> object:
        if len(args) == 1 and type(args[0]) is list:  # the usual max(result)
            items = args[0]
            if all(type(x) is float or type(x) is int for x in items):
                return pick(items) if items else None
        values = _numbers(name, args)
        return pick(values) if values else None

    return run


def _mean(*args: Any) -> float:
    values = _numbers("mean", args)
    return math.fsum(values) / len(values) if values else 0.0


def _median(*args: Any) -> float:
    values = sorted(_numbers("median", args))
    if not values:
        return 0.0
    mid = len(values) // 2
    return float(values[mid]) if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _end(name: str, index: int) -> Callable[[object], object]:
    def run(items: Any) -> object:
        if kind_of(items) not in ("array", "string"):
            raise ExprError(f"invalid argument for {name} (type {go_type(items)})")
        return items[index] if items else None

    return run


def _map_part(name: str, part: str) -> Callable[[object], list[object]]:
    def run(value: Any) -> list[object]:
        if kind_of(value) != "map":
            raise ExprError(f"invalid argument for {name} (type {go_type(value)})")
        return list(getattr(value, part)())

    return run


# name -> (min args, max args or -1, implementation, kind of the result; "arg" = the argument's)
FUNCTIONS: dict[str, tuple[int, int, Callable[..., object], str]] = {
    "asInt": (1, 1, as_int, "int"),
    "asFloat": (1, 1, as_float, "float"),
    "isNaN": (1, 1, _float_test("isNaN", math.isnan), "bool"),
    "isInf": (1, 1, _float_test("isInf", math.isinf), "bool"),
    "len": (1, 1, _length, "int"),
    "abs": (1, 1, lambda v: abs(_number("abs", v)), "arg"),
    "ceil": (1, 1, _rounding("ceil", math.ceil), "float"),
    "floor": (1, 1, _rounding("floor", math.floor), "float"),
    "round": (1, 1, _rounding("round", _go_round), "float"),
    "int": (1, 1, _to_int, "int"),
    "float": (1, 1, _to_float, "float"),
    "string": (1, 1, lambda v: v if type(v) is str else format_value(v, MAX_STRING), "string"),
    "trim": (1, 2, lambda s, cut=None: _text("trim", s).strip(cut), "string"),
    "upper": (1, 1, lambda s: _text("upper", s).upper(), "string"),
    "lower": (1, 1, lambda s: _text("lower", s).lower(), "string"),
    "split": (2, 2, _split, "array"),
    "join": (1, 2, _join, "string"),
    "max": (1, -1, _extreme("max", max), "any"),
    "min": (1, -1, _extreme("min", min), "any"),
    "mean": (1, -1, _mean, "float"),
    "median": (1, -1, _median, "float"),
    "first": (1, 1, _end("first", 0), "any"),
    "last": (1, 1, _end("last", -1), "any"),
    "keys": (1, 1, _map_part("keys", "keys"), "array"),
    "values": (1, 1, _map_part("values", "values"), "array"),
}
NOT_SUPPORTED = frozenset(
    "now date duration timezone toJSON fromJSON toBase64 fromBase64 sort sortBy uniq groupBy "
    "reduce repeat replace indexOf lastIndexOf hasPrefix hasSuffix flatten concat reverse get "
    "type trimPrefix trimSuffix take bitand bitor bitxor bitnand bitnot bitshl bitshr".split()
)
PREDICATE_KIND = {"all": "bool", "any": "bool", "none": "bool", "one": "bool",
                  "filter": "array", "map": "array", "count": "int", "sum": "any",
                  "find": "any", "findLast": "any", "findIndex": "int", "findLastIndex": "int"}  # fmt: skip


def _not_bool(name: str, value: Any) -> ExprError:
    return ExprError(f"predicate of {name} must return bool, got {go_type(value)}")


def _run_predicate(name: str, keys: Any, test: Callable[[Any], Any], element: Fn) -> object:
    """One predicate built-in. `keys` are what `test` takes (the elements themselves, or
    their indexes when the predicate needs a scope); `element(key)` is the element."""
    if name == "map":
        return [test(k) for k in keys]
    if name == "sum":
        total: object = 0
        for k in keys:
            total = add(total, _number("sum", test(k)))
        return total
    if name in ("all", "any", "none"):
        stop = name != "all"  # all stops at the first False, any/none at the first True
        for k in keys:
            hit = test(k)
            if hit is stop:
                return name == "any"
            if hit is not (not stop):
                raise _not_bool(name, hit)
        return name != "any"
    hits = [k for k in keys if _hit(name, test(k))] if name in ("one", "count", "filter") else []
    if name == "filter":
        return [element(k) for k in hits]
    if name in ("one", "count"):
        return len(hits) == 1 if name == "one" else len(hits)
    positions = range(len(keys)) if name in ("find", "findIndex") else range(len(keys) - 1, -1, -1)
    for i in positions:
        if _hit(name, test(keys[i])):
            return i if name.endswith("Index") else element(keys[i])
    return -1 if name.endswith("Index") else None


def _hit(name: str, value: Any) -> bool:
    if value is True or value is False:
        return value
    raise _not_bool(name, value)


# ---------------------------------------------------------------- compiler: nodes -> closures

CONCRETE = frozenset(_GO)  # kinds known at compile time; "exact" = known at run time
_NUMERIC = frozenset({"int", "float"})


def _allowed(op: str, a: str, b: str) -> bool:
    """expr's checker for two operands of known kinds."""
    if op in ("==", "!="):
        return a == b or "nil" in (a, b) or (a in _NUMERIC and b in _NUMERIC)
    if op in _CMP or op == "+":
        return (a in _NUMERIC and b in _NUMERIC) or a == b == "string"
    if op in ("-", "*", "/", "**"):
        return a in _NUMERIC and b in _NUMERIC
    if op in ("%", ".."):
        return a == b == "int"
    if op == "in":
        return b in ("array", "nil") or (b == "map" and a == "string")
    return a == b == "string"  # contains, startsWith, endsWith


def _arith_kind(op: str, a: str, b: str) -> str:
    if op in ("/", "**"):
        return "float"
    if op in ("%", ".."):
        return "int" if op == "%" else "array"
    if "any" in (a, b):
        return "any"
    if a in CONCRETE and b in CONCRETE:
        return "string" if a == "string" else ("int" if a == b == "int" else "float")
    return "exact"


@dataclass(frozen=True, slots=True)
class _C:
    """A compiled node: its closure, its static kind, its value if constant."""

    fn: Fn
    kind: str  # "any", "exact" or one of CONCRETE
    const: object = _NOTHING


def _const(value: object) -> _C:
    return _C(lambda env: value, kind_of(value), value)


def _unknown(name: str) -> ExprError:
    return ExprError(f"unknown name {name}: it is not in the evaluation environment")


class _Compiler:
    def __init__(self, source: str, variables: frozenset[str]) -> None:
        self.source = source
        self.variables = variables
        self.scoped = False  # some predicate reads `#` from a scope (a copy of env)
        self.budgeted = False  # nested predicates or ranges: the scope carries a step budget
        self.nesting = 0  # predicates being compiled, innermost last
        self.operands: dict[Fn, list[Fn]] = {}  # flattened operands of && / || closures
        self.leaves: dict[Fn, _Leaf] = {}  # fused comparisons, by their closure

    def error(self, node: Node, message: str) -> ExprSyntaxError:
        return ExprSyntaxError(message, position=node.pos, source=self.source)

    def compile(self, node: Node) -> _C:
        method: Callable[[Any], _C] = getattr(self, "c_" + type(node).__name__)
        return method(node)

    def c_Lit(self, node: Lit) -> _C:
        return _const(node.value)

    def c_Name(self, node: Name) -> _C:
        name = node.name
        if name not in self.variables:
            raise self.error(node, f"unknown name {name}")

        def var(env: Any) -> object:
            try:
                return env[name]
            except KeyError:
                raise _unknown(name) from None

        return _C(var, "exact")

    def c_Pointer(self, node: Pointer) -> _C:
        key = _INDEX if node.name else _ITEM
        return _C(lambda env: env[key], "int" if node.name else "any")

    def c_Predicate(self, node: Predicate) -> _C:
        raise self.error(node, "a predicate can only be an argument of a built-in function")

    def c_Unary(self, node: Unary) -> _C:
        c = self.compile(node.operand)
        f, op = c.fn, node.op
        wanted = ("bool",) if op == "!" else ("int", "float")
        if c.kind in CONCRETE and c.kind not in wanted:
            raise self.error(node, f"invalid operation: {op} (mismatched type {_GO[c.kind]})")
        if op == "!":
            def negate(env: Any) -> bool:
                return not truth(f(env), "operand of !")

            return _C(negate, "bool")

        def sign(value: object) -> object:
            if not _is_num(value):
                raise ExprError(f"invalid operation: {op} {go_type(value)}")
            return value if op == "+" else -value  # type: ignore[operator]

        if c.const is not _NOTHING:
            return _const(sign(c.const))
        return _C(lambda env: sign(f(env)), c.kind if c.kind in _NUMERIC | {"exact"} else "any")

    def c_Binary(self, node: Binary) -> _C:
        op = node.op
        if op == "matches":
            raise self.error(node, "the matches operator is not supported: regular expressions "
                             "cannot be bounded in time; use contains, startsWith or endsWith")  # fmt: skip
        left, right = self.compile(node.left), self.compile(node.right)
        if op in ("&&", "||"):
            return self.logic(node, left, right)
        lf, rf = left.fn, right.fn
        if op == "??":
            same = left.kind == right.kind and left.kind in CONCRETE
            kind = right.kind if left.kind == "nil" else (left.kind if same else "any")
            return _C(lambda env: rf(env) if (v := lf(env)) is None else v, kind)
        if left.kind in CONCRETE and right.kind in CONCRETE and not _allowed(op, left.kind, right.kind):
            raise self.error(node, f"invalid operation: {op} (mismatched types "
                             f"{_GO[left.kind]} and {_GO[right.kind]})")  # fmt: skip
        if op == "..":
            self.scoped = self.budgeted = True
            return _C(lambda env: _ranged(env, lf(env), rf(env)), "array")
        typed = op in ("==", "!=") and "any" not in (left.kind, right.kind) and "exact" in (left.kind, right.kind)
        core = _typed_equality(op) if typed else BINARY[op]
        kind = "bool" if op in _CMP or op in ("==", "!=", "in", "contains", "startsWith", "endsWith") \
            else _arith_kind(op, left.kind, right.kind)  # fmt: skip
        if self.nesting:  # inside a loop: pay for the size of the operands
            self.budgeted = True
            return _C(lambda env: _metered(env, core, lf(env), rf(env)), kind)
        if typed:
            return _C(lambda env: core(lf(env), rf(env)), kind)
        if op in ("==", "!=") and right.const is not _NOTHING:
            return _C(_equals_const(op, lf, right.const), "bool")
        if op in _CMP and _is_num(right.const):
            target = node.left
            if isinstance(target, Member) and isinstance(target.obj, Name) and \
                    isinstance(target.prop, Lit) and not target.optional:  # fmt: skip
                leaf = _Leaf(target.obj.name, target.prop.value, op, right.const)
                fused = _compare_member(leaf)
                self.leaves[fused] = leaf
                return _C(fused, "bool")
            return _C(_compare_to(op, lf, right.const), "bool")
        return _C(lambda env: core(lf(env), rf(env)), kind)

    def logic(self, node: Binary, left: _C, right: _C) -> _C:
        for side in (left, right):
            if side.kind in CONCRETE and side.kind != "bool":
                raise self.error(node, f"invalid operation: {node.op} (mismatched types "
                                 f"{_GO[side.kind]} and bool)")  # fmt: skip
        same = isinstance(node.left, Binary) and node.left.op == node.op
        operands = [*(self.operands.pop(left.fn, [left.fn]) if same else [left.fn]), right.fn]
        if len(operands) == 2 and all(f in self.leaves for f in operands):
            fn = _compare_pair(self.leaves[operands[0]], self.leaves[operands[1]], node.op)
        elif len(operands) > 2:
            fn = _conjunction(operands, node.op)
        else:
            fn = _logic2(operands[0], operands[1], node.op)
        self.operands[fn] = operands  # `a && b && c` runs as one closure over three operands
        return _C(fn, "bool")

    def c_Member(self, node: Member) -> _C:
        obj, prop = self.compile(node.obj), self.compile(node.prop)
        of, pf, key = obj.fn, prop.fn, prop.const
        tolerant = _optional_chain(node)
        from_result = isinstance(node.obj, Name) and node.obj.name == "result"
        if tolerant:
            return _C(lambda env: None if (o := of(env)) is None else fetch(o, pf(env)), "any")
        if key is _NOTHING:
            return _C(lambda env: fetch(of(env), pf(env), from_result=from_result), "any")
        if isinstance(node.obj, Name):
            return _C(_variable_member(node.obj.name, key, from_result), "any")

        def member(env: Any) -> object:
            o = of(env)
            if type(o) is dict and type(key) is str:
                return o.get(key)
            return fetch(o, key, from_result=from_result)

        return _C(member, "any")

    def c_Slice(self, node: Slice) -> _C:
        obj = self.compile(node.obj)
        of = obj.fn
        lo = self.compile(node.lo).fn if node.lo else (lambda env: None)
        hi = self.compile(node.hi).fn if node.hi else (lambda env: None)
        kind = obj.kind if obj.kind in ("array", "string", "exact") else "any"
        if self.nesting:  # inside a loop: a slice copies, pay for it
            self.budgeted = True
            return _C(lambda env: _metered(env, slice_of, of(env), lo(env), hi(env)), kind)
        return _C(lambda env: slice_of(of(env), lo(env), hi(env)), kind)

    def c_Array(self, node: Array) -> _C:
        fns = [self.compile(item).fn for item in node.items]
        return _C(lambda env: [f(env) for f in fns], "array")

    def c_MapLit(self, node: MapLit) -> _C:
        pairs = [(self.compile(k).fn, self.compile(v).fn) for k, v in node.pairs]

        def build(env: Any) -> dict[str, object]:
            out: dict[str, object] = {}
            for kf, vf in pairs:
                key = kf(env)
                if type(key) is not str:
                    raise ExprError(f"a map key must be a string, got {go_type(key)}")
                out[key] = vf(env)
            return out

        return _C(build, "map")

    def c_Cond(self, node: Cond) -> _C:
        test = self.compile(node.test)
        if test.kind in CONCRETE and test.kind != "bool":
            raise self.error(node, f"non-bool expression (type {_GO[test.kind]}) used as condition")
        then = self.compile(node.then) if node.then is not None else test
        other = self.compile(node.other)
        tf, thf, of = test.fn, then.fn, other.fn

        def choose(env: Any) -> object:
            return thf(env) if truth(tf(env), "condition of ?:") else of(env)

        same = then.kind == other.kind and then.kind in CONCRETE
        return _C(choose, then.kind if same else "any")

    def c_Call(self, node: Call) -> _C:
        name = node.name
        if name in PREDICATE_KIND:
            return self.predicate_call(node)
        args = [self.compile(arg) for arg in node.args]
        if name in ("isNil", "default"):
            return self.argo_quirk(node, args)
        if name not in FUNCTIONS:
            if name in NOT_SUPPORTED:
                raise self.error(node, f"function {name}() is not supported in conditions")
            raise self.error(node, f"unknown function {name}()")
        low, high, impl, kind = FUNCTIONS[name]
        if len(args) < low:
            raise self.error(node, f"not enough arguments to call {name}")
        if high >= 0 and len(args) > high:
            raise self.error(node, f"too many arguments to call {name}")
        if kind == "arg":
            kind = args[0].kind if args[0].kind in _NUMERIC | {"exact"} else "any"
        fns = [a.fn for a in args]
        if self.nesting:  # inside a loop: pay for the size of the arguments
            self.budgeted = True
            return _C(lambda env: _metered(env, impl, *[f(env) for f in fns]), kind)
        if len(fns) == 1 and isinstance(node.args[0], Name):
            var = node.args[0].name
            return _C(lambda env: impl(env[var] if var in env else fns[0](env)), kind)
        if len(fns) == 1:
            f0 = fns[0]
            return _C(lambda env: impl(f0(env)), kind)
        return _C(lambda env: impl(*[f(env) for f in fns]), kind)

    def argo_quirk(self, node: Call, args: list[_C]) -> _C:
        """Argo's isNil(_) and default(_, d) ignore their first argument (§4.1): they test
        the top-level `result`. Arguments are still evaluated, as Go evaluates them."""
        wanted = 1 if node.name == "isNil" else 2
        if len(args) != wanted:
            few = "not enough" if len(args) < wanted else "too many"
            raise self.error(node, f"{few} arguments to call {node.name}")
        fns = [a.fn for a in args]

        def quirk(env: Any) -> object:
            values = [f(env) for f in fns]
            result = env.get("result")
            if node.name == "isNil":
                return result is None
            return values[1] if result is None else result

        return _C(quirk, "bool" if node.name == "isNil" else "any")

    def predicate_call(self, node: Call) -> _C:
        name = node.name
        coll = self.compile(node.args[0])
        if coll.kind in CONCRETE and coll.kind != "array":
            raise self.error(node, f"builtin {name} takes only array (got {_GO[coll.kind]})")
        if self.nesting:  # a loop inside a loop: the scope carries a step budget
            self.budgeted = True
        cf, pred = coll.fn, node.args[1] if len(node.args) > 1 else None
        body = pred.body if isinstance(pred, Predicate) else None
        fast = _element_test(body) if body is not None else (lambda x: x)
        if fast is None:
            self.scoped = True  # the body reads `#` from a scope
            self.nesting += 1
            compiled = self.compile(body)  # type: ignore[arg-type]
            self.nesting -= 1
            if name not in ("map", "sum") and compiled.kind in CONCRETE and compiled.kind != "bool":
                raise self.error(body, f"predicate should return boolean (got {_GO[compiled.kind]})")  # type: ignore[arg-type]
            return _C(_scoped_predicate(name, cf, compiled.fn), PREDICATE_KIND[name])
        test = fast
        loop = _quantifier(name, body) or (lambda items: _run_predicate(name, items, test, _identity))

        def run(env: Any) -> object:
            items = cf(env)
            if type(items) is not list and kind_of(items) != "array":
                raise ExprError(f"builtin {name} takes only array (got {go_type(items)})")
            if _BUDGET in env:
                charge(env, len(items))
            return loop(items)

        return _C(run, PREDICATE_KIND[name])


def _identity(value: object) -> object:
    return value


def _scoped_predicate(name: str, cf: Fn, body: Fn) -> Fn:
    """A predicate whose body reads `#`/`#index` from the scope, saved and restored around
    the loop so nested predicates each see their own element."""

    def run(env: Any) -> object:
        items = cf(env)
        if kind_of(items) != "array":
            raise ExprError(f"builtin {name} takes only array (got {go_type(items)})")
        if _BUDGET in env:
            charge(env, len(items))
        outer = env.get(_ITEM, _NOTHING), env.get(_INDEX)

        def test(i: int) -> object:
            env[_ITEM] = items[i]
            env[_INDEX] = i
            return body(env)

        try:
            return _run_predicate(name, range(len(items)), test, items.__getitem__)
        finally:
            if outer[0] is not _NOTHING:
                env[_ITEM], env[_INDEX] = outer

    return run


def _quantifier(name: str, body: Node | None) -> Callable[[Any], object] | None:
    """`all(result, # < 0.05)` and its any/none siblings as one tight loop."""
    if name not in ("all", "any", "none") or not isinstance(body, Binary) or body.op not in _CMP:
        return None
    left, right = body.left, body.right
    if not (isinstance(left, Pointer) and not left.name and isinstance(right, Lit)):
        return None
    if not _is_num(right.value):
        return None
    op, cmp, stop = body.op, _CMP[body.op], name != "all"
    const: Any = right.value

    def loop(items: Any) -> bool:
        for x in items:
            hit = cmp(x, const) if type(x) is float or type(x) is int else order(op, x, const)
            if hit is stop:
                return name == "any"
        return name != "any"

    return loop


def _element_test(body: Node) -> Callable[[Any], object] | None:
    """The common predicate `# OP const` or `#.field OP const` (OP a comparison) as a
    plain function of the element, needing no scope; None for any other body."""
    if not (isinstance(body, Binary) and isinstance(body.right, Lit)):
        return None
    op, left = body.op, body.left
    const: Any = body.right.value
    if op not in _CMP and op not in ("==", "!="):
        return None
    key: object = _NOTHING
    if isinstance(left, Member) and isinstance(left.obj, Pointer) and isinstance(left.prop, Lit) \
            and not left.optional:  # fmt: skip
        key, left = left.prop.value, left.obj
    if not (isinstance(left, Pointer) and left.name == ""):
        return None
    if op in ("==", "!="):
        want = op == "=="
        compare: Callable[[Any], object] = lambda x: equal(x, const) is want  # noqa: E731
    elif _is_num(const):
        cmp = _CMP[op]

        def compare(x: Any) -> object:
            if type(x) is float or type(x) is int:
                return cmp(x, const)
            return order(op, x, const)
    else:
        compare = lambda x: order(op, x, const)  # noqa: E731
    if key is _NOTHING:
        return compare
    return lambda x: compare(x.get(key) if type(x) is dict and type(key) is str else fetch(x, key))


def _logic2(lf: Fn, rf: Fn, op: str) -> Fn:
    short = op == "||"  # the value that decides without looking at the right side
    other = not short
    what = f"operand of {op}"

    def logic(env: Any) -> bool:
        a = lf(env)
        if a is short:
            return short
        if a is not other:
            truth(a, what)
        b = rf(env)
        if b is True or b is False:
            return b
        return truth(b, what)

    return logic


def _conjunction(fns: list[Fn], op: str) -> Fn:
    short = op == "||"
    other = not short
    what = f"operand of {op}"

    def logic(env: Any) -> bool:
        for f in fns:
            v = f(env)
            if v is short:
                return short
            if v is not other:
                truth(v, what)
        return other

    return logic


def _optional_chain(node: Node) -> bool:
    """True inside a chain that has `?.`: nil anywhere after it makes the chain nil."""
    while isinstance(node, (Member, Slice)):
        if isinstance(node, Member) and node.optional:
            return True
        node = node.obj
    return False


def _ranged(env: Any, a: object, b: object) -> list[int]:
    values = make_range(a, b)
    charge(env, len(values))
    return values


def _typed_equality(op: str) -> Callable[[object, object], bool]:
    """== / != where both sides are typed: incompatible types are an error, as in expr."""
    want = op == "=="

    def eq(a: object, b: object) -> bool:
        if type(a) is not type(b) and a is not None and b is not None:
            if not (_is_num(a) and _is_num(b)) and kind_of(a) != kind_of(b):
                raise _mismatch(op, a, b)
        return equal(a, b) is want

    return eq


def _size(value: object) -> int:
    """Work units for handling `value`: its length, or one per 16 characters of a string."""
    kind = type(value)
    if kind is str:
        return len(value) >> 4  # type: ignore[arg-type]
    if kind is list or kind is dict or kind is tuple:
        return len(value)  # type: ignore[arg-type]
    return 0


def _metered(env: Any, core: Callable[..., object], *args: object) -> object:
    """core(*args), after charging the budget for the size of the arguments (in loops)."""
    charge(env, sum(_size(a) for a in args))
    return core(*args)


def _equals_const(op: str, lf: Fn, const: Any) -> Fn:
    want = op == "=="
    if const is None:
        return lambda env: (lf(env) is None) is want
    kind = type(const)

    def equals(env: Any) -> bool:
        a = lf(env)
        if type(a) is kind:
            return (a == const) is want
        return equal(a, const) is want

    return equals


def _compare_to(op: str, lf: Fn, const: Any) -> Fn:
    cmp = _CMP[op]

    def compare(env: Any) -> Any:
        a = lf(env)
        if type(a) is float or type(a) is int:
            return cmp(a, const)
        return order(op, a, const)

    return compare


@dataclass(frozen=True, slots=True)
class _Leaf:
    """`name[key] OP const` (or `name.key OP const`), the commonest condition shape."""

    name: str
    key: Any
    op: str
    const: Any

    def read(self, env: Any) -> object:
        """The slow path of the fused closures below: lookup errors, nil, empty result..."""
        if self.name not in env:
            raise _unknown(self.name)
        return fetch(env[self.name], self.key, from_result=self.name == "result")


def _compare_member(leaf: _Leaf) -> Fn:
    """`result[0] >= 0.95`: lookup, fetch and comparison in one closure (the hot path)."""
    name, key, const, op, read = leaf.name, leaf.key, leaf.const, leaf.op, leaf.read
    cmp, by_index = _CMP[op], type(key) is int

    def compare(env: Any) -> Any:
        try:
            o = env[name]
            if type(o) is list and by_index or type(o) is dict and not by_index:
                a = o[key]
            else:
                a = read(env)
        except (KeyError, IndexError):  # unknown name, out of range, missing key
            a = read(env)
        if type(a) is float or type(a) is int:
            return cmp(a, const)
        return order(op, a, const)

    return compare


def _compare_pair(first: _Leaf, second: _Leaf, op: str) -> Fn:
    """`result[0] >= 0.95 && result[0] < 1.5`: two fused comparisons unrolled in one
    closure, about half the cost of three closure calls."""
    one, two, short = _compare_member(first), _compare_member(second), op == "||"
    n1, k1, c1, cmp1 = first.name, first.key, first.const, _CMP[first.op]
    n2, k2, c2, cmp2 = second.name, second.key, second.const, _CMP[second.op]
    if type(k1) is not int or type(k2) is not int:
        return _logic2(one, two, op)
    if (n1, k1) == (n2, k2):  # a range check on one value: fetch it once

        def between(env: Any) -> Any:
            try:
                o = env[n1]
                a = o[k1] if type(o) is list else None
            except (KeyError, IndexError):
                a = None
            if type(a) is float or type(a) is int:
                hit = cmp1(a, c1)
                return hit if hit is short else cmp2(a, c2)
            hit = one(env)  # not a number where expected: the error, or a tuple's element
            return hit if hit is short else two(env)

        return between

    def pair(env: Any) -> Any:
        try:
            o = env[n1]
            a = o[k1] if type(o) is list else None
        except (KeyError, IndexError):
            a = None
        hit = cmp1(a, c1) if type(a) is float or type(a) is int else one(env)
        if hit is short:
            return short
        try:
            o = env[n2]
            a = o[k2] if type(o) is list else None
        except (KeyError, IndexError):
            a = None
        if type(a) is float or type(a) is int:
            return cmp2(a, c2)
        return two(env)

    return pair


def _variable_member(name: str, key: Any, from_result: bool) -> Fn:
    """`result[0]` / `result.a`: the variable lookup and the fetch in one closure."""
    by_index = type(key) is int

    def member(env: Any) -> object:
        try:
            o = env[name]
        except KeyError:
            raise _unknown(name) from None
        if type(o) is list and by_index:
            try:
                return o[key]
            except IndexError:
                pass
        elif type(o) is dict and not by_index:
            return o.get(key)
        return fetch(o, key, from_result=from_result)

    return member


# ---------------------------------------------------------------- public API


class Expression:
    """A compiled expression. `evaluate(env)` runs it against variables such as
    `{"result": ...}` and returns its value, or raises ExprError. For speed, `evaluate` is
    the root closure itself unless the expression needs a scope (a copy of env where
    predicates keep `#`) or a step budget (nested predicates, ranges)."""

    __slots__ = ("source", "evaluate")

    def __init__(self, source: str, root: Fn, *, scoped: bool, budgeted: bool) -> None:
        self.source = source
        self.evaluate: Callable[[Env], object] = root
        if scoped or budgeted:

            def evaluate(env: Env) -> object:
                scope = dict(env)
                if budgeted:
                    scope[_BUDGET] = [MAX_STEPS]
                return root(scope)

            self.evaluate = evaluate

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


@functools.lru_cache(maxsize=1024)
def compile_expr(text: str, variables: frozenset[str] = RESULT_ONLY) -> Expression:
    """Parse and compile `text` once; raises ExprSyntaxError for anything wrong with it."""
    compiler = _Compiler(text, variables)
    root = compiler.compile(parse(text))
    return Expression(text, root.fn, scoped=compiler.scoped, budgeted=compiler.budgeted)


def check_syntax(text: str) -> ExprSyntaxError | None:
    """The compile error of `text` (syntax, unknown name or function, typed mismatch), if any."""
    try:
        compile_expr(text)
    except ExprSyntaxError as err:
        return err
    return None


def eval_condition(condition: str, result: object) -> bool:
    """Argo's EvalCondition: the condition's value for `result`, which must be a bool."""
    value = compile_expr(condition).evaluate({"result": result})
    if value is True or value is False:
        return value
    raise ExprError(f"expected bool, but got {go_type(value)}")


# ---------------------------------------------------------------- a measurement's verdict


class MeasurementPhase(StrEnum):
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


@dataclass(frozen=True, slots=True)
class Verdict:
    phase: MeasurementPhase
    message: str


def _no_data(result: object) -> bool:
    return result is None or (kind_of(result) == "array" and len(result) == 0)  # type: ignore[arg-type]


def _check(label: str, condition: str, result: object) -> bool | Verdict:
    try:
        return eval_condition(condition, result)
    except Exception as err:  # noqa: BLE001 - any failure of a user's condition is data
        reason = NO_DATA if _no_data(result) else str(err)
        if not isinstance(err, ExprError):
            reason = f"internal error: {type(err).__name__}: {err}"
        return Verdict(MeasurementPhase.ERROR, f'could not evaluate {label} "{condition}": {reason}')


def evaluate_condition(success: str | None, failure: str | None, result: object) -> Verdict:
    """Argo's EvaluateResult (argo-rollouts.md §3.4). Success is evaluated before failure;
    failure wins when both hold; both false is Inconclusive. With no condition at all the
    measurement is Successful whatever the result (Argo's code; its docs say Inconclusive)."""
    shown = format_value(result)
    if not success and not failure:
        return Verdict(MeasurementPhase.SUCCESSFUL,
                       f"result {shown}: no successCondition or failureCondition, so any result "
                       "counts as Successful (as in Argo Rollouts)")  # fmt: skip
    passed = failed = False
    if success:
        outcome = _check("successCondition", success, result)
        if isinstance(outcome, Verdict):
            return outcome
        passed = outcome
    if failure:
        outcome = _check("failureCondition", failure, result)
        if isinstance(outcome, Verdict):
            return outcome
        failed = outcome
    s, f = f'successCondition "{success}"', f'failureCondition "{failure}"'
    if failed:
        return Verdict(MeasurementPhase.FAILED, f"result {shown} met {f}")
    if not failure:
        phase = MeasurementPhase.SUCCESSFUL if passed else MeasurementPhase.FAILED
        return Verdict(phase, f"result {shown} {'satisfied' if passed else 'did not satisfy'} {s}")
    if passed or not success:
        met = f"satisfied {s} and did not meet {f}" if success else f"did not meet {f}"
        return Verdict(MeasurementPhase.SUCCESSFUL, f"result {shown} {met}")
    return Verdict(MeasurementPhase.INCONCLUSIVE, f"result {shown} satisfied neither {s} nor {f}")
