"""The Dockerfile, read as Docker reads it (no Docker engine here, so the image is not built):
a slim Python base, the wheel built from the checkout and installed without test extras, a
numeric non-root USER that is the chart's runAsUser, ENTRYPOINT `rollouts` and CMD `controller`;
.dockerignore keeps the checkout's build inputs and drops the rest."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from dataclasses import dataclass

from tests.chart.conftest import ROOT, Render, one

DOCKERFILE = ROOT / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str


def instructions() -> list[Instruction]:
    """Dockerfile instructions, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, value = line.partition(" ")
            found.append(Instruction(keyword.upper(), " ".join(value.split())))
    return found


def stages() -> list[list[Instruction]]:
    found: list[list[Instruction]] = []
    for instruction in instructions():
        if instruction.keyword == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def last(stage: list[Instruction], keyword: str) -> str:
    values = [i.value for i in stage if i.keyword == keyword]
    assert values, f"no {keyword} in the final stage"
    return values[-1]


def test_the_base_is_a_slim_python_matching_requires_python() -> None:
    args = dict(i.value.split("=", 1) for i in instructions() if i.keyword == "ARG" and "=" in i.value)
    image = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", image), image
    assert [i.value for i in instructions() if i.keyword == "FROM"] == ["${PYTHON_IMAGE} AS wheel", "${PYTHON_IMAGE}"]
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert required == ">=3.11" and int(image.split(".")[1].split("-")[0]) >= 11


def test_the_final_stage_runs_as_a_numeric_non_root_user_the_chart_also_sets(render: Render) -> None:
    final = stages()[-1]
    user = last(final, "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) > 0 and int(gid) > 0, user
    pod = one(render(), "Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert (pod["runAsUser"], pod["runAsGroup"]) == (int(uid), int(gid))
    # the user exists in the image with that uid (useradd in a RUN before USER)
    runs = " ".join(i.value for i in final if i.keyword == "RUN")
    assert f"--uid {uid}" in runs and f"--gid {gid}" in runs
    assert [i.keyword for i in final].index("USER") > max(n for n, i in enumerate(final) if i.keyword == "RUN")


def test_the_entrypoint_is_rollouts_and_the_command_controller() -> None:
    final = stages()[-1]
    assert json.loads(last(final, "ENTRYPOINT")) == ["rollouts"]
    assert json.loads(last(final, "CMD")) == ["controller"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "rollouts" in scripts


def test_only_the_wheel_and_its_runtime_dependencies_are_installed() -> None:
    builder, final = stages()
    build = " ".join(i.value for i in builder if i.keyword == "RUN")
    assert "pip wheel" in build and "--no-deps" in build and "--wheel-dir /wheels" in build
    installs = [i.value for i in final if i.keyword == "RUN" and "pip install" in i.value]
    assert installs == ["pip install /wheels/rollouts-*.whl && rm -rf /wheels"]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    test_packages = {re.split(r"[=<>\[ ]", requirement)[0].lower() for requirement in extras}
    text = DOCKERFILE.read_text().lower()
    assert "[test]" not in text and " -e " not in text
    assert not {name for name in test_packages if re.search(rf"\b{re.escape(name)}\b", text)}


def ignored(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.removeprefix("**/")) or
               path.startswith(p.rstrip("/") + "/") for p in patterns)


def test_dockerignore_keeps_the_build_inputs_and_drops_the_rest() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for needed in ("pyproject.toml", "README.md", "rollouts/cli/controller.py", "analysis/model.py",
                   "examples/istio-canary/rollout.yaml", "rollouts/examples"):
        assert not ignored(needed, patterns), needed
    for dropped in (".venv/bin/python", ".git/HEAD", "tests/test_crds.py", "rollouts/__pycache__/x.pyc"):
        assert ignored(dropped, patterns), dropped
