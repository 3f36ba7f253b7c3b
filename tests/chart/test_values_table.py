"""README's values table is the one tools/values_table.py makes from the chart, and covers every value."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType
from typing import Any

import yaml

from tests.chart.conftest import CHART, ROOT


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("values_table", ROOT / "tools" / "values_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def flat(values: dict[str, Any], prefix: str = "") -> set[str]:
    """Dotted names of values.yaml, down to the groups the schema names (free maps stay whole)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    groups = {name for name, sub in schema["properties"].items() if "properties" in sub}
    return {f"{group}.{key}" for group in groups for key in values[group]} | {k for k in values if k not in groups}


def test_the_readme_table_is_the_generated_one() -> None:
    tool = generator()
    readme = (ROOT / "README.md").read_text()
    assert tool.replaced(readme) == readme, "README.md's values table is stale: run tools/values_table.py --write"


def test_the_table_lists_every_value_of_values_yaml_once() -> None:
    tool = generator()
    listed = [row.split("`")[1] for row in tool.table().splitlines()[2:]]
    assert len(listed) == len(set(listed))
    assert set(listed) == flat(yaml.safe_load((CHART / "values.yaml").read_text()))
