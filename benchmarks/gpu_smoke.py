"""Half a minute on a GPU before a long job: every code path the realism job takes, at tiny size, on the device.

    python benchmarks/gpu_smoke.py PREPARED WORK

Trains ``gan/tiny`` for 6 steps and resumes it to 10 (checkpoint written from and read back onto the GPU),
trains ``upscale/tiny`` (32 → 64 px), samples the cascade and runs a C2ST on the device. Exits non-zero at the first
failure, so a long job is not started on a path that breaks (a GPU lease is short).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from mammosynth import api
from mammosynth.evaluate.c2st import two_sample_test
from mammosynth.generate.pipeline import load_pipeline
from mammosynth.training.device import pick_device


def main() -> None:
    prepared, work = Path(sys.argv[1]), Path(sys.argv[2])
    device = pick_device("auto")
    started = time.perf_counter()
    gan, upscale = work / "smoke-gan", work / "smoke-upscale"
    api.train(prepared, gan, model="gan", config="tiny", set=["train.steps=6"], overwrite=True)
    api.train(prepared, gan, model="gan", config="tiny", set=["train.steps=10"], resume=True)
    api.train(
        prepared, upscale, model="upscale", config="tiny", set=["train.steps=6", "model.image_size=64"], overwrite=True
    )
    base = sorted((gan / "checkpoints").glob("step-*"))[-1]
    stage = sorted((upscale / "checkpoints").glob("step-*"))[-1]
    pipeline = load_pipeline(str(base), upscale=[stage])
    conditions = [{"view": "CC", "laterality": "L"}] * 8
    images = pipeline.sample(conditions, list(range(8)), sampler="ddim", steps=2)
    assert images.shape == (8, 64, 64) and np.isfinite(images).all(), images.shape
    real = np.random.default_rng(0).random((8, 64, 64)).astype(np.float32)
    c2st = two_sample_test(real, images, work_px=64, steps=5, repeats=2, device=device)
    print(
        f"smoke ok on {device}: {base.name}, {stage.name}, C2ST {c2st['auc']:.2f}, "
        f"{time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
