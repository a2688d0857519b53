"""Realism of the lesions alone: a two-sample test on square patches centred on each lesion, synthetic lesions
(where their images asked for them) against real ones (where the annotation puts them). A whole-image C2ST is
dominated by the breast around a lesion; this one looks at the lesion and its surround only."""

from __future__ import annotations

import numpy as np
import torch

from mammosynth.evaluate.c2st import two_sample_test
from mammosynth.models.conditioning import conditions_from_record
from mammosynth.models.verifier import crop_patches

MIN_LESIONS = 4  # per set; fewer and the test is not run (said in the output)


def asked_conditions(record) -> dict | None:
    """The conditions a generated image was made for (its provenance), or None for real/phantom images."""
    return record.extra.get("provenance", {}).get("conditions") if isinstance(record.extra, dict) else None


def conditions_of(record) -> dict:
    """What a generated image requested (its provenance), or what a real record's annotation says."""
    asked = asked_conditions(record)
    return asked if asked is not None else conditions_from_record(record)


def _centre(conditions: dict) -> tuple[float, float] | None:
    if conditions.get("category", "none") == "none" or "lesion_x" not in conditions or "lesion_y" not in conditions:
        return None
    return float(conditions["lesion_x"]), float(conditions["lesion_y"])


def lesion_centre(record) -> tuple[float, float] | None:
    """Where a record's first lesion is, as fractions (x, y) of the image width and height: what a generated
    image requested (its provenance), or what a real record's annotation says; ``None`` for a normal image
    or a lesion without a location.

    Example:
        >>> from mammosynth.datasets.schema import Finding, Record
        >>> r = Record(image_id="a", path="a.png", dataset="d", patient_key="p", width=100, height=100,
        ...            findings=[Finding("mass", geometry="circle", coords=[30.0, 60.0, 5.0])])
        >>> lesion_centre(r)
        (0.3, 0.6)
    """
    return _centre(conditions_of(record))


def lesion_patches(images: np.ndarray, centres: list[tuple[float, float]], patch_px: int = 64) -> np.ndarray:
    """``patch_px``-square crops of ``images`` (N, H, W) centred on ``centres`` (fractions of width and
    height), padded with 0 (the background of a prepared image) where they leave the image.

    Example:
        >>> lesion_patches(np.ones((1, 8, 8)), [(0.0, 0.5)], patch_px=4)[0].sum(axis=0).tolist()
        [0.0, 0.0, 4.0, 4.0]
    """
    _, h, w = images.shape
    pixels = torch.tensor([[round(x * w), round(y * h)] for x, y in centres], dtype=torch.float32)
    return crop_patches(torch.from_numpy(np.ascontiguousarray(images))[:, None], pixels, patch_px)[:, 0].numpy()


def lesion_two_sample_test(
    real_images: np.ndarray,
    real_records: list,
    synthetic_images: np.ndarray,
    synthetic_records: list,
    patch_px: int = 64,
    steps: int = 300,
    seed: int = 0,
    device: torch.device | None = None,
) -> dict:
    """C2ST (:func:`~mammosynth.evaluate.c2st.two_sample_test`, split by patient) between ``patch_px``-square
    patches centred on the real lesions and on the lesions the synthetic images requested; only lesion kinds
    both sets have (mass, calcification …) take part. Skipped, with the reason, under ``MIN_LESIONS`` a set."""

    def located(records: list) -> list[tuple[int, tuple[float, float], str]]:
        found = [(k, conditions_of(record)) for k, record in enumerate(records)]
        centred = [(k, _centre(c), c["category"]) for k, c in found]
        return [row for row in centred if row[1] is not None]

    real, synthetic = located(real_records), located(synthetic_records)
    kinds = sorted({kind for *_, kind in real} & {kind for *_, kind in synthetic})
    real = [item for item in real if item[2] in kinds]
    synthetic = [item for item in synthetic if item[2] in kinds]
    patch_px = min(patch_px, real_images.shape[1], real_images.shape[2])
    summary = {"patch_px": patch_px, "kinds": kinds, "real_lesions": len(real), "synthetic_lesions": len(synthetic)}
    if len(real) < MIN_LESIONS or len(synthetic) < MIN_LESIONS:
        return {**summary, "skipped": f"fewer than {MIN_LESIONS} located lesions of a kind both sets have in a set"}
    real_patches = lesion_patches(real_images[[k for k, *_ in real]], [c for _, c, _ in real], patch_px)
    synthetic_patches = lesion_patches(
        synthetic_images[[k for k, *_ in synthetic]], [c for _, c, _ in synthetic], patch_px
    )
    patients = [real_records[k].patient_key for k, *_ in real]
    if len(set(patients)) < 2:
        return {**summary, "skipped": "real lesions of fewer than 2 patients"}
    return {
        **summary,
        **two_sample_test(
            real_patches, synthetic_patches, patients, work_px=patch_px, steps=steps, seed=seed, device=device
        ),
    }
