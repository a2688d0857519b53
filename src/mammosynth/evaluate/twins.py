"""Realism in the held-out set's own mix: a synthetic twin of every held-out record. An expanded set has
another mix of conditions (a lesion-balanced one has no new normal images), so a two-sample test against it
measures the mix as well (:mod:`mammosynth.evaluate.mix`); twins made for the held-out records' own labels
measure realism alone."""

from __future__ import annotations

import json
from pathlib import Path

from mammosynth.evaluate.c2st import two_sample_test
from mammosynth.evaluate.suite import load_images, select_split
from mammosynth.generate import generate_dataset
from mammosynth.generate.conditions import write_condition_table
from mammosynth.io.atomic import atomic_write


def held_out_twins(
    prepared: str | Path,
    checkpoint: str | Path,
    out: str | Path,
    real_split: str = "test",
    repeat: int = 2,
    seed: int = 0,
    upscale: str | Path | list[str | Path] | None = None,
) -> dict:
    """Generate ``repeat`` images for each record of the ``real_split`` split of ``prepared`` with its
    conditions (view, laterality, density, finding and where it is: its labels, never its pixels) into
    ``out/images``, and run the two-sample test (split by patient, at the images' size) between them and
    the held-out images. Writes ``out/conditions.csv`` and ``out/c2st.json``; returns the test's result with
    the split and ``repeat``."""
    records, dataset, label = select_split(prepared, real_split, "real", "--real-split")
    real, records = load_images(prepared, records=records, root=dataset.root)
    out = Path(out)
    table = write_condition_table(records, out / "conditions.csv", repeat=repeat)
    generate_dataset(checkpoint, out / "images", table=table, seed=seed, steps=30, upscale=upscale, overwrite=True)
    synthetic, _ = load_images(out / "images", synthetic_only=True)
    patients = [r.patient_key for r in records]
    result = {
        "split": label,
        "repeat": repeat,
        **two_sample_test(real, synthetic, patients, work_px=real.shape[1], seed=seed),
    }
    with atomic_write(out / "c2st.json", "w") as handle:
        json.dump(result, handle, indent=1)
    return result
