"""Run every evaluation on two datasets in the record schema (real and synthetic; optionally the
generator's training set) and write every number, with the inputs, versions and seeds that produced it,
to ``evaluation.json``, the pictures and tables to the self-contained ``report.html``, and the feature
encoder to ``encoder.safetensors`` (give it back with ``features`` to compare evaluations)."""

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
from mammosynth.evaluate.conditional import conditional_agreement, verifier_agreement
from mammosynth.evaluate.coverage import mode_collapse, precision_recall_density_coverage
from mammosynth.evaluate.distances import frechet_distance, kernel_distance
from mammosynth.evaluate.extractors import load_extractor, save_encoder
from mammosynth.evaluate.features import train_encoder
from mammosynth.evaluate.memorisation import feature_copies, memorisation
from mammosynth.evaluate.moments import compare_moments, histogram_distance, intensity_moments
from mammosynth.evaluate.radiomics import INSTALL_HINT, frd_available, radiomics_distance
from mammosynth.evaluate.reidentify import reidentification
from mammosynth.evaluate.report import write_report
from mammosynth.evaluate.shape import breast_mask, compare_shapes
from mammosynth.evaluate.spectrum import spectrum_exponent
from mammosynth.evaluate.utility import utility
from mammosynth.io.atomic import atomic_output_dir
from mammosynth.io.images import read_image


def load_images(folder: str | Path, synthetic_only: bool = False) -> tuple[np.ndarray, list]:
    """All images of a dataset as one (N, H, W) float32 stack in [0, 1], and its records; every image
    must have the same size (evaluate prepared or generated sets). ``synthetic_only`` keeps the records
    marked synthetic when the set has any (an expanded dataset holds real and synthetic images)."""
    dataset = load_dataset(folder)  # refuses an empty dataset itself
    records = dataset.records
    if synthetic_only and any(_is_synthetic(r) for r in records):
        records = [r for r in records if _is_synthetic(r)]
    images, sizes = [], Counter()
    for record in records:
        pixels = read_image(dataset.image_path(record)).pixels.astype(np.float32)
        sizes[pixels.shape] += 1
        images.append(pixels)
    if len(sizes) > 1:
        shown = ", ".join(f"{w}×{h} ({n})" for (h, w), n in sizes.most_common(3))
        raise InputError(folder, f"images have mixed resolutions: {shown}; run `mammosynth prepare` first")
    return np.stack(images), records


def _is_synthetic(record) -> bool:
    return isinstance(record.extra, dict) and bool(record.extra.get("synthetic"))


def _breast(image: np.ndarray) -> np.ndarray:
    region = breast_mask(image)
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


def has_lesion(record) -> int:
    """1 when a record shows a lesion, 0 when normal."""
    return int(bool(record.findings))


def _asked(record) -> dict | None:
    """The conditions a generated image was made for (its provenance), or None for real/phantom images."""
    return record.extra.get("provenance", {}).get("conditions") if isinstance(record.extra, dict) else None


def requested_fields(records: list) -> dict[str, list]:
    """Per field, what each image requested (generator output: its provenance; otherwise what the record
    says, e.g. phantoms and real data); ``None`` where nothing was asked."""
    out: dict[str, list] = {"view": [], "laterality": [], "density": [], "lesion": []}
    for record in records:
        asked = _asked(record)
        for name in ("view", "laterality", "density"):
            out[name].append(getattr(record, name) if asked is None else asked.get(name))
        if asked is None:
            out["lesion"].append("lesion" if record.findings else "normal")
        else:
            category = asked.get("category")
            out["lesion"].append(None if category is None else "normal" if category == "none" else "lesion")
    return out


def _verifier_section(checkpoint: str | Path, images: np.ndarray, records: list, root: Path) -> dict:
    from mammosynth.generate.verify import LesionChecker
    from mammosynth.io.images import read_mask

    checker = LesionChecker(str(checkpoint))
    requests, regions = [], []
    for record in records:
        asked = _asked(record)
        if asked is None:
            first = record.findings[0] if record.findings else None
            asked = {"category": first.category if first else "none",
                     **({"pathology": first.pathology} if first else {})}
        requests.append(asked)
        mask = next((f.mask_path for f in record.findings if f.mask_path), None)
        region = read_mask(root / mask) if mask and (root / mask).is_file() else None
        regions.append(region if region is None or region.shape == images.shape[1:] else None)
    return verifier_agreement(checker, images, requests, regions)


def evaluate_sets(real: str | Path, synthetic: str | Path, out: str | Path, train: str | Path | None = None,
                  seed: int = 0, encoder_steps: int = 300, c2st_steps: int = 300, features: str | None = None,
                  run_utility: bool = True, utility_steps: int = 400, conditional_steps: int = 300,
                  verifier: str | Path | None = None, frd: bool = False, shape_fits: int = 40,
                  overwrite: bool = False, progress: Callable[[int, int], None] | None = None) -> dict:
    """Fidelity (moments, histogram, spectra, shape, FID/KID, optionally FRD), diversity
    (precision/recall/density/coverage, mode collapse), realism (C2ST), conditional correctness, utility
    (real / real+synthetic / synthetic-only classifiers) and — with ``train`` — memorisation and
    re-identification of ``synthetic`` against ``real``. Writes ``out/evaluation.json``,
    ``out/report.html`` and ``out/encoder.safetensors`` (atomically, as one folder) and returns the numbers.

    ``features`` replaces the self-trained encoder with a saved one (``PATH``) or ``ARCH:PATH`` weights
    (:func:`~mammosynth.evaluate.extractors.load_extractor`); ``verifier`` is a lesion-verifier checkpoint
    for lesion kind and position; ``frd`` adds the Fréchet Radiomics Distance (optional extra).
    """
    real_images, real_records = load_images(real)
    synthetic_images, synthetic_records = load_images(synthetic, synthetic_only=True)
    if real_images.shape[1:] != synthetic_images.shape[1:]:
        raise InputError(synthetic, f"images are {synthetic_images.shape[2]}×{synthetic_images.shape[1]} but the real "
                         f"ones are {real_images.shape[2]}×{real_images.shape[1]}; prepare both at one size")
    for name, images in (("real", real_images), ("synthetic", synthetic_images)):
        if len(images) < 6:
            raise InputError(real if name == "real" else synthetic, f"the {name} set has {len(images)} images; "
                             "the evaluation needs at least 6")
    if frd and not frd_available():
        raise InputError(None, f"--frd needs the optional radiomics extra: {INSTALL_HINT}")
    extractor = load_extractor(features) if features else None  # bad weights fail before the long steps
    train_images = train_records = None
    if train is not None and Path(train).resolve() == Path(real).resolve():
        train_images, train_records = real_images, real_records  # the common `--train REAL`: read once
    elif train is not None:
        train_images, train_records = load_images(train)
        if train_images.shape[1:] != synthetic_images.shape[1:]:
            raise InputError(train, "training images differ in size from the synthetic ones")
    steps = 8 + (train is not None) + run_utility + frd
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
    fidelity: dict = {
        "moments": compare_moments(real_moments, synthetic_moments),
        "histogram_js_distance": histogram_distance(real_images[breast_mask(real_images)],
                                                    synthetic_images[breast_mask(synthetic_images)]),
        "spectrum_beta": {"patch_px": patch,
                          "real_median": float(np.median(real_beta)) if real_beta else None,
                          "synthetic_median": float(np.median(synthetic_beta)) if synthetic_beta else None,
                          "real_images": len(real_beta), "synthetic_images": len(synthetic_beta)},
    }
    tick()
    fidelity["shape"] = compare_shapes(real_images, synthetic_images, np.array([r.view == "CC" for r in real_records]),
                                       np.array([r.view == "CC" for r in synthetic_records]), max_fits=shape_fits,
                                       seed=seed)
    tick()
    if extractor is None:
        extractor = train_encoder(real_images, steps=encoder_steps, seed=seed)
    real_features, synthetic_features = extractor(real_images), extractor(synthetic_images)
    kid, kid_std = kernel_distance(real_features, synthetic_features, seed=seed)
    fidelity["features"] = {"extractor": extractor.name, "encoder_steps": None if features else encoder_steps,
                            "frechet_distance": frechet_distance(real_features, synthetic_features),
                            "kernel_distance": kid, "kernel_distance_std": kid_std}
    tick()
    if frd:
        fidelity["radiomics"] = radiomics_distance(real_images, synthetic_images, seed=seed)
        tick()
    k = min(5, len(real_features) - 1, len(synthetic_features) - 1)
    diversity = precision_recall_density_coverage(real_features, synthetic_features, k=k)
    collapse = mode_collapse(real_features, synthetic_features, seed=seed)
    tick()
    realism = two_sample_test(real_images, synthetic_images, steps=c2st_steps, seed=seed)
    tick()
    real_patients = [r.patient_key for r in real_records]
    real_fields = requested_fields(real_records)
    conditional: dict = {"fields": conditional_agreement(real_images, real_fields, real_patients, synthetic_images,
                                                         requested_fields(synthetic_records), seed=seed,
                                                         steps=conditional_steps)}
    conditional["verifier"] = (_verifier_section(verifier, synthetic_images, synthetic_records, Path(synthetic))
                               if verifier else {"skipped": "no lesion-verifier checkpoint given (--verifier)"})
    tick()
    result = {
        "mammosynth": __version__, "python": platform.python_version(), "seed": seed,
        "inputs": {"real": str(real), "synthetic": str(synthetic), "train": None if train is None else str(train),
                   "real_images": len(real_images), "synthetic_images": len(synthetic_images),
                   "image_size": list(real_images.shape[1:])},
        "settings": {"encoder_steps": encoder_steps, "c2st_steps": c2st_steps, "features": features,
                     "utility_steps": utility_steps if run_utility else None, "conditional_steps": conditional_steps,
                     "verifier": None if verifier is None else str(verifier), "frd": frd, "shape_fits": shape_fits},
        "counts": {"real": _counts(real_records), "synthetic": _counts(synthetic_records)},
        "fidelity": fidelity, "diversity": diversity, "mode_collapse": collapse, "realism_c2st": realism,
        "conditional": conditional,
    }
    if run_utility:
        try:
            result["utility"] = utility(real_images, np.array([has_lesion(r) for r in real_records]), real_patients,
                                        synthetic_images, np.array([has_lesion(r) for r in synthetic_records]),
                                        steps=utility_steps, seed=seed)
        except InputError as exc:
            result["utility"] = {"skipped": exc.problem}
        tick()
    if train_images is not None:
        train_patients = {r.patient_key for r in train_records}
        unseen = np.array([r.patient_key not in train_patients for r in real_records])
        held_out = real_images[unseen] if unseen.any() else None
        result["memorisation"] = memorisation(synthetic_images, train_images, held_out)
        result["memorisation"]["held_out_images"] = int(unseen.sum())
        result["memorisation"]["feature_space"] = feature_copies(
            synthetic_features, real_features if train_images is real_images else extractor(train_images),
            real_features[unseen] if unseen.any() else None)
        if held_out is not None:
            result["reidentification"] = reidentification(synthetic_images, train_images,
                                                          [r.patient_key for r in train_records], held_out)
        else:
            result["reidentification"] = {"skipped": "every real image belongs to a training patient; give real "
                                          "images the generator never saw"}
        tick()
    plots = {"real_moments": real_moments, "synthetic_moments": synthetic_moments, "real_beta": real_beta,
             "synthetic_beta": synthetic_beta, "real_features": real_features, "synthetic_features": synthetic_features}
    with atomic_output_dir(out, overwrite=overwrite) as tmp:
        (tmp / "evaluation.json").write_text(json.dumps(result, indent=1))
        write_report(tmp / "report.html", result, real_images, synthetic_images, train_images, plots, seed=seed)
        if features is None:
            save_encoder(extractor, tmp / "encoder.safetensors")
    tick()
    return result
