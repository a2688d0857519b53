"""Run the evaluation metrics on two datasets in the record schema (real and synthetic; optionally the
generator's training set) and write every number, with the inputs and seeds that produced it, to
``evaluation.json`` — the machine-readable half of the report (the HTML half is still to come)."""

from __future__ import annotations

import json
import platform
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mammosynth import __version__
from mammosynth.datasets import load_dataset
from mammosynth.errors import InputError
from mammosynth.evaluate.c2st import two_sample_test
from mammosynth.evaluate.coverage import precision_recall_density_coverage
from mammosynth.evaluate.distances import frechet_distance, kernel_distance
from mammosynth.evaluate.features import train_encoder
from mammosynth.evaluate.memorisation import memorisation
from mammosynth.evaluate.moments import compare_moments, histogram_distance, intensity_moments
from mammosynth.evaluate.spectrum import spectrum_exponent
from mammosynth.io.atomic import atomic_output_dir
from mammosynth.io.images import read_image


def load_images(folder: str | Path) -> tuple[np.ndarray, list]:
    """All images of a dataset as one (N, H, W) float32 stack in [0, 1], and its records; every image
    must have the same size (evaluate prepared or generated sets)."""
    dataset = load_dataset(folder)  # refuses an empty dataset itself
    images, sizes = [], Counter()
    for record in dataset.records:
        pixels = read_image(dataset.image_path(record)).pixels.astype(np.float32)
        sizes[pixels.shape] += 1
        images.append(pixels)
    if len(sizes) > 1:
        shown = ", ".join(f"{w}×{h} ({n})" for (h, w), n in sizes.most_common(3))
        raise InputError(folder, f"images have mixed resolutions: {shown}; run `mammosynth prepare` first")
    return np.stack(images), dataset.records


def _breast(image: np.ndarray) -> np.ndarray:
    region = image > 0.02
    return region if region.sum() >= 16 else np.ones_like(region)


def _spectra(images: np.ndarray, patch_px: int) -> list[float]:
    out = []
    for image in images:
        try:
            out.append(spectrum_exponent(image, _breast(image), patch_px=patch_px))
        except InputError:
            continue  # no patch wholly inside this breast
    return out


def _counts(records: list) -> dict:
    lesions = Counter(f.category for r in records for f in r.findings)
    return {"view": dict(Counter(str(r.view) for r in records)),
            "laterality": dict(Counter(str(r.laterality) for r in records)),
            "density": dict(Counter(str(r.density) for r in records)),
            "findings": dict(lesions), "images_with_findings": sum(bool(r.findings) for r in records)}


def evaluate_sets(real: str | Path, synthetic: str | Path, out: str | Path, train: str | Path | None = None,
                  seed: int = 0, encoder_steps: int = 300, c2st_steps: int = 300, overwrite: bool = False,
                  progress: Callable[[int, int], None] | None = None) -> dict:
    """Fidelity (moments, histogram, spectra, FID/KID), diversity (precision/recall/density/coverage), realism
    (C2ST) and — with ``train`` — memorisation of ``synthetic`` against ``real``; writes
    ``out/evaluation.json`` and returns the same dictionary."""
    real_images, real_records = load_images(real)
    synthetic_images, synthetic_records = load_images(synthetic)
    if real_images.shape[1:] != synthetic_images.shape[1:]:
        raise InputError(synthetic, f"images are {synthetic_images.shape[2]}×{synthetic_images.shape[1]} but the real "
                         f"ones are {real_images.shape[2]}×{real_images.shape[1]}; prepare both at one size")
    for name, images in (("real", real_images), ("synthetic", synthetic_images)):
        if len(images) < 6:
            raise InputError(real if name == "real" else synthetic, f"the {name} set has {len(images)} images; "
                             "the evaluation needs at least 6")
    steps = 6 if train is not None else 5
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, steps)

    real_moments = np.stack([intensity_moments(im, _breast(im)) for im in real_images])
    synthetic_moments = np.stack([intensity_moments(im, _breast(im)) for im in synthetic_images])
    patch = max(16, real_images.shape[1] // 8)
    real_beta, synthetic_beta = _spectra(real_images, patch), _spectra(synthetic_images, patch)
    fidelity = {
        "moments": compare_moments(real_moments, synthetic_moments),
        "histogram_js_distance": histogram_distance(real_images[real_images > 0.02],
                                                    synthetic_images[synthetic_images > 0.02]),
        "spectrum_beta": {"patch_px": patch,
                          "real_median": float(np.median(real_beta)) if real_beta else None,
                          "synthetic_median": float(np.median(synthetic_beta)) if synthetic_beta else None,
                          "real_images": len(real_beta), "synthetic_images": len(synthetic_beta)},
    }
    tick()
    extract = train_encoder(real_images, steps=encoder_steps, seed=seed)
    real_features, synthetic_features = extract(real_images), extract(synthetic_images)
    kid, kid_std = kernel_distance(real_features, synthetic_features, seed=seed)
    fidelity["features"] = {"extractor": "contrastive encoder trained on the real set",
                            "encoder_steps": encoder_steps, "frechet_distance": frechet_distance(real_features,
                                                                                                synthetic_features),
                            "kernel_distance": kid, "kernel_distance_std": kid_std}
    tick()
    k = min(5, len(real_features) - 1, len(synthetic_features) - 1)
    diversity = precision_recall_density_coverage(real_features, synthetic_features, k=k)
    tick()
    realism = two_sample_test(real_images, synthetic_images, steps=c2st_steps, seed=seed)
    tick()
    result = {
        "mammosynth": __version__, "python": platform.python_version(), "seed": seed,
        "inputs": {"real": str(real), "synthetic": str(synthetic), "train": None if train is None else str(train),
                   "real_images": len(real_images), "synthetic_images": len(synthetic_images),
                   "image_size": list(real_images.shape[1:])},
        "counts": {"real": _counts(real_records), "synthetic": _counts(synthetic_records)},
        "fidelity": fidelity, "diversity": diversity, "realism_c2st": realism,
    }
    if train is not None:
        train_images, _ = load_images(train)
        if train_images.shape[1:] != synthetic_images.shape[1:]:
            raise InputError(train, "training images differ in size from the synthetic ones")
        found = memorisation(synthetic_images, train_images, None if Path(train) == Path(real) else real_images)
        result["memorisation"] = {key: value for key, value in found.items()}
        tick()
    with atomic_output_dir(out, overwrite=overwrite) as tmp:
        (tmp / "evaluation.json").write_text(json.dumps(result, indent=1))
    tick()
    return result
