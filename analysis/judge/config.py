"""The judge's config: the `rollouts/judge` plugin block of a metric, parsed and checked once.

Rules:
- `parse(raw)` gives a `JudgeConfig` or raises `ConfigError` listing every problem as
  (path, message, fix), `path` relative to the plugin block (`metrics[0].direction`).
  `problems(raw)` is the same list without raising; lint (analysis.provider_checks) and the
  provider at measure time both call it, so a mistake reads the same everywhere.
- Names are Kayenta's where they map: per metric `direction` (increase|decrease|either),
  `nanStrategy` (remove|replace), `critical`, `mustHaveData`, `muted`, `effectSize`
  {allowedIncrease, allowedDecrease, criticalIncrease, criticalDecrease, measure: meanRatio|cles},
  `outliers` {strategy: keep|remove, outlierFactor}, `groups`; top level `groupWeights` and
  `scoreThresholds` {pass, marginal}. A Kayenta metric's `analysisConfigurations.canary` block and
  a Kayenta config's `classifier` block are read as if their fields were written in place.
- Ours: `canary` and `baseline` PromQL (range-queried; `{{args.*}}` already substituted),
  optional `canaryTotal` and `baselineTotal` (both or neither: the metric is then counts of bad
  events out of totals, e.g. 5xx out of all requests), `weight` (within its group), `minSamples`
  (default 10, per metric or top level), `confidence` (Kayenta's hard-coded 0.98; alias
  `confLevel`), `mode` (fixed|sequential), `lookback` and `step` (durations, default 30m and 1m),
  `address` and `timeout` (as the prometheus provider's), `sequential` {alpha (0.01), passEarly
  (true), passBelow (1.5: pass early once the canary is decisively below this ratio to baseline)}.
- Unknown keys are problems (a misspelt `minSample` must not silently judge with the default).
  A value still holding an `{{args.*}}` placeholder is not judged here (it is at measure time).
- Pure: pydantic only, no numpy or scipy, so lint stays light.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from analysis.args import PLACEHOLDER
from analysis.model import DurationError, parse_duration

PLUGIN = "rollouts/judge"
DEFAULT_MIN_SAMPLES = 10


class Direction(StrEnum):
    INCREASE = "increase"  # only an increase of the canary is harm (latency, errors)
    DECREASE = "decrease"  # only a decrease is harm (success rate, throughput)
    EITHER = "either"


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class EffectSize(_Model):
    measure: Literal["meanRatio", "cles"] = "meanRatio"
    allowed_increase: float | None = Field(default=None, gt=0)
    allowed_decrease: float | None = Field(default=None, gt=0)
    critical_increase: float | None = Field(default=None, gt=0)
    critical_decrease: float | None = Field(default=None, gt=0)

    def gate(self, name: str) -> float:
        """Kayenta's defaults: 1.0 for meanRatio, 0.5 for cles (no gate beyond significance)."""
        value: float | None = getattr(self, name)
        return value if value is not None else (1.0 if self.measure == "meanRatio" else 0.5)


class Outliers(_Model):
    strategy: Literal["keep", "remove"] = "keep"
    outlier_factor: float = Field(default=3.0, gt=0)


class JudgeMetric(_Model):
    name: str = Field(min_length=1)
    canary: str = Field(min_length=1)
    baseline: str = Field(min_length=1)
    canary_total: str | None = None
    baseline_total: str | None = None
    direction: Direction = Direction.EITHER
    nan_strategy: Literal["remove", "replace"] = "remove"
    critical: bool = False
    must_have_data: bool = False
    muted: bool = False
    effect_size: EffectSize = EffectSize()
    outliers: Outliers = Outliers()
    groups: tuple[str, ...] = ("default",)
    weight: float = Field(default=1.0, gt=0)
    min_samples: int | None = Field(default=None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _kayenta_block(cls, data: Any) -> Any:
        return _lift(data, "analysisConfigurations", "canary")

    @model_validator(mode="after")
    def _totals_together(self) -> JudgeMetric:
        if (self.canary_total is None) != (self.baseline_total is None):
            raise ValueError("canaryTotal and baselineTotal go together")
        return self

    @property
    def counts(self) -> bool:
        """Bad events out of totals (the rate canary/canaryTotal is judged)."""
        return self.canary_total is not None


class Thresholds(_Model):
    pass_: float = Field(default=95.0, alias="pass", ge=0, le=100)
    marginal: float = Field(default=75.0, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.marginal > self.pass_:
            raise ValueError(f"marginal ({self.marginal:g}) must not exceed pass ({self.pass_:g})")
        return self


class Sequential(_Model):
    alpha: float = Field(default=0.01, gt=0, lt=0.5)
    pass_early: bool = True
    pass_below: float = Field(default=1.5, gt=1)


class JudgeConfig(_Model):
    metrics: tuple[JudgeMetric, ...] = Field(min_length=1)
    mode: Literal["fixed", "sequential"] = "fixed"
    confidence: float = Field(default=0.98, gt=0.5, lt=1, validation_alias=AliasChoices("confidence", "confLevel"))
    min_samples: int = Field(default=DEFAULT_MIN_SAMPLES, ge=1)
    score_thresholds: Thresholds = Field(default=Thresholds(),
                                         validation_alias=AliasChoices("scoreThresholds", "thresholds"))
    group_weights: dict[str, float] = Field(default_factory=dict)
    sequential: Sequential = Sequential()
    lookback: int | str = "30m"
    step: int | str = "1m"
    address: str | None = None
    timeout: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _kayenta_classifier(cls, data: Any) -> Any:
        return _lift(data, "classifier")

    @field_validator("lookback", "step")
    @classmethod
    def _duration(cls, value: int | str) -> int | str:
        try:
            seconds = parse_duration(value)
        except DurationError as err:
            raise ValueError(str(err)) from None
        if seconds <= 0:
            raise ValueError(f"{value!r} is not a positive duration")
        return value

    @model_validator(mode="after")
    def _checked(self) -> JudgeConfig:
        names = [metric.name for metric in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"metric names must be unique (got {', '.join(names)})")
        if any(weight < 0 for weight in self.group_weights.values()):
            raise ValueError("groupWeights must not be negative")
        return self

    def metric_min_samples(self, metric: JudgeMetric) -> int:
        return metric.min_samples if metric.min_samples is not None else self.min_samples


class ConfigError(ValueError):
    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        super().__init__("; ".join(f"{path}: {message}" for path, message, _ in problems))
        self.problems = problems


_FIXES = {
    "direction": "use increase, decrease or either",
    "nanStrategy": "use remove or replace",
    "mode": "use fixed or sequential",
    "measure": "use meanRatio or cles",
    "strategy": "use keep or remove",
    "canaryTotal": "set both canaryTotal and baselineTotal (counts), or neither (values)",
    "lookback": "give a duration such as 30m",
    "step": "give a duration such as 1m",
}


def parse(raw: Any) -> JudgeConfig:
    """The config of a `rollouts/judge` plugin block (args substituted); ConfigError lists every problem."""
    try:
        return JudgeConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_problems(err, raw, keep_placeholders=True)) from None


def problems(raw: Any) -> list[tuple[str, str, str]]:
    """Every (path, message, fix) of `raw` that can never work; fields holding placeholders pass."""
    try:
        JudgeConfig.model_validate(raw)
    except ValidationError as err:
        return _problems(err, raw, keep_placeholders=False)
    return []


def _problems(err: ValidationError, raw: Any, *, keep_placeholders: bool) -> list[tuple[str, str, str]]:
    found = []
    errors = err.errors(include_url=False)
    inner = [tuple(error["loc"]) for error in errors]
    for error in errors:
        loc = [part for part in error["loc"] if not str(part).startswith(("function-", "tagged-union"))]
        if not keep_placeholders and _placeholder_at(raw, loc):
            continue
        if error["type"] == "too_short" and any(len(other) > len(loc) and list(other[:len(loc)]) == loc
                                                for other in inner):
            continue  # a list emptied by its items' own errors: those are the problems
        path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
        field = next((str(part) for part in reversed(loc) if isinstance(part, str)), "")
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message, fix = f"unknown field {field!r}", "remove it, or fix its spelling (see README: Statistical judge)"
        elif error["type"] == "missing":
            message, fix = f"{field or 'a field'} is required", f"set {field}"
        else:
            fix = _FIXES.get(field, "see README: Statistical judge")
        found.append((path or "(config)", message, fix))
    return found


def _placeholder_at(raw: Any, loc: list[Any]) -> bool:
    """The value the error is about is a string holding a placeholder (a whole block never is)."""
    node = raw
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    return isinstance(node, str) and bool(PLACEHOLDER.search(node))


def _lift(data: Any, *keys: str) -> Any:
    """`data` with the fields of data[keys[0]][keys[1]]... written in place (explicit fields win)."""
    if not isinstance(data, dict) or keys[0] not in data:
        return data
    block: Any = data.get(keys[0])
    for key in keys[1:]:
        block = block.get(key) if isinstance(block, dict) else None
    if not isinstance(block, dict):
        return data
    rest = {k: v for k, v in data.items() if k != keys[0]}
    return {**block, **rest}
