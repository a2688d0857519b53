"""Packaging for people who install into their own environment: floors, not pins (a cluster's CUDA torch
must do), the web app and TensorBoard as extras, and every import of an extra's package behind them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_dependencies_are_floors_and_the_optional_parts_are_extras():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+>=[0-9][0-9.]*", requirement), requirement
    names = {re.split(r"[<>=]", r)[0] for r in project["dependencies"]}
    assert {"fastapi", "uvicorn", "tensorboard", "ray"}.isdisjoint(names)
    assert "einops" in names  # never imported by name here, but MONAI's attention blocks need it
    extras = project["optional-dependencies"]
    assert {re.split(r"[<>=]", r)[0] for r in extras["app"]} == {"fastapi", "uvicorn"}
    assert {re.split(r"[<>=]", r)[0] for r in extras["scale"]} == {"tensorboard", "ray"}
    assert "mammosynth[app,scale]" in extras["dev"]  # the Makefile's install keeps both README commands


def test_only_the_app_the_training_loop_and_ray_expansion_import_an_extras_package():
    allowed = {
        "fastapi": {"app/server.py"},
        "uvicorn": {"app/server.py"},
        "tensorboard": {"training/loop.py"},
        "ray": {"export/ray_expand.py"},
    }
    source = ROOT / "src" / "mammosynth"
    for path in source.rglob("*.py"):
        text = path.read_text()
        for module, places in allowed.items():
            if re.search(rf"^\s*(from|import) [\w.]*\b{module}\b", text, re.MULTILINE):
                assert path.relative_to(source).as_posix() in places, (path, module)
