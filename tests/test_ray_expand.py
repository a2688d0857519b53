"""Expansion sharded on a local 2-worker Ray cluster: the same files bit for bit as one process makes, with a
worker killed (kill -9) mid-run and its block redone by Ray, progress aggregated in the driver.

One process is run with one thread, as each Ray worker is: CPU kernels split their sums by thread count,
which moves a pixel by at most one 16-bit grey level between a 1-thread and a 2-thread process."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
import time

import pytest
import torch

from mammosynth import api
from mammosynth.phantom import make_phantom_dataset

pytest.importorskip("ray", reason="Ray is in the scale extra (pip install 'mammosynth[scale]')")

TARGET = "150-per-class"  # 432 synthetic images: a block takes long enough to be killed while it runs


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray")
    parts = []
    for k, (lesion, n) in enumerate((("none", 12), ("malignant-mass", 4), ("benign-mass", 2))):
        make_phantom_dataset(root / lesion, n=n, size=32, seed=1, lesion=lesion, start=100 * k)
        parts.append(root / lesion)
    api._merge(parts, root / "data")
    api.train(root / "data", root / "run", model="gan", config="tiny", set=["train.steps=10"])
    return root


def digest(out) -> dict[str, str]:
    """Every output file's hash but the run's timings (expand.json) and the card that quotes them."""
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name not in ("expand.json", "README.md")
    }


def kill_one_worker(records, killed: list[int], stop: threading.Event) -> None:
    """kill -9 the first Ray worker seen running a block once the first records are written."""
    while not stop.is_set() and not killed:
        if records.is_dir() and any(records.iterdir()):
            found = subprocess.run(["pgrep", "-f", "ray::_expand_block"], capture_output=True, text=True).stdout.split()
            if found:
                os.kill(int(found[0]), signal.SIGKILL)
                killed.append(int(found[0]))
        time.sleep(0.01)


def test_ray_workers_make_what_one_process_makes_and_survive_a_killed_worker(setup, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = api.expand(setup / "data", tmp_path / "one", setup / "run", target=TARGET, batch_size=4)
    finally:
        torch.set_num_threads(threads)
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=kill_one_worker, args=(tmp_path / "ray" / "records", killed, stop))
    killer.start()
    seen: list[tuple[int, int]] = []
    try:
        result = api.expand(
            setup / "data",
            tmp_path / "ray",
            setup / "run",
            target=TARGET,
            batch_size=4,
            ray="local",
            ray_workers=2,
            progress=lambda done, total: seen.append((done, total)),
        )
    finally:
        stop.set()
        killer.join()
    assert killed, "no Ray worker was seen running a block"
    assert result["synthetic_images"] == one["synthetic_images"] == 432
    assert digest(tmp_path / "ray") == digest(tmp_path / "one")
    assert seen[-1] == (432, 432) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_bad_ray_arguments_are_one_line(setup, tmp_path):
    from mammosynth.errors import InputError

    with pytest.raises(InputError, match="--ray-workers"):
        api.expand(setup / "data", tmp_path / "w", setup / "run", target="20-per-class", ray="local", ray_workers=0)
    with pytest.raises(InputError, match="cannot reach the Ray cluster"):
        api.expand(setup / "data", tmp_path / "a", setup / "run", target="20-per-class", ray="127.0.0.1:1")
    assert not (tmp_path / "w" / "records").exists() or not any((tmp_path / "w" / "records").iterdir())


def test_without_ray_expand_ray_is_one_line_naming_the_extra(setup, tmp_path, monkeypatch):
    import sys

    from mammosynth.errors import InputError

    monkeypatch.setitem(sys.modules, "ray", None)  # import fails as without the scale extra
    with pytest.raises(InputError, match=r"needs the scale extra \(ray is missing\)"):
        api.expand(setup / "data", tmp_path / "x", setup / "run", target="20-per-class", ray="local")
    assert not (tmp_path / "x").exists()
