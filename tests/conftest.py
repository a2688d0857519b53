from __future__ import annotations

import os
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `pytest -n 2` on two cores: one thread per worker (and per CLI subprocess it starts). With torch's default
    # of one OpenMP thread per core, the spinning threads of each worker starve the other (a sampler test took
    # 17 s beside a twin instead of 6.7 s).
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared(name: str) -> Path:
    path = SHARED / name
    if not path.is_dir():
        pytest.skip(f"real data folder {path} is absent (it lives beside the repository as ../shared/data)")
    return path


@pytest.fixture(autouse=True)
def _private_salt(tmp_path_factory, monkeypatch):
    """Every test gets its own per-user salt home, so no test reads or writes ~/.mammosynth."""
    monkeypatch.setenv("MAMMOSYNTH_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.delenv("MAMMOSYNTH_SALT", raising=False)


@pytest.fixture
def gradient() -> np.ndarray:
    y, x = np.mgrid[0:64, 0:48]
    return ((x + y) / (47 + 63)).astype(np.float32)
