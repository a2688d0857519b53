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
from mammosynth import validate as check
from mammosynth.datasets import load_dataset
from mammosynth.datasets.base import Dataset
from mammosynth.datasets.schema import SPLITS
from mammosynth.errors import InputError
from mammosynth.evaluate.c2st import two_sample_test
from mammosynth.evaluate.conditional import conditional_agreement, verifier_agreement
from mammosynth.evaluate.coverage import mode_collapse, precision_recall_density_coverage
from mammosynth.evaluate.distances import FID_MIN_IMAGES, frechet_with_interval, kernel_distance, kid_subset_size
from mammosynth.evaluate.extractors import load_extractor, save_encoder
from mammosynth.evaluate.features import train_encoder
from mammosynth.evaluate.lesions import asked_conditions, lesion_two_sample_test
from mammosynth.evaluate.memorisation import feature_copies, memorisation
from mammosynth.evaluate.mix import match_mix
from mammosynth.evaluate.moments import (
    breast_histogram,
    compare_moments,
    counts_distance,
    intensity_moments,
    training_reference,
)
from mammosynth.evaluate.radiomics import INSTALL_HINT, frd_available, radiomics_distance
from mammosynth.evaluate.reidentify import reidentification
from mammosynth.evaluate.report import write_report
from mammosynth.evaluate.shape import breast_mask, compare_shapes
from mammosynth.evaluate.stack import work_stack
from mammosynth.evaluate.utility import utility
from mammosynth.io.atomic import atomic_output_dir, check_output_dir
from mammosynth.io.images import read_image
from mammosynth.preprocess.spectrum import spectrum_exponents, spectrum_patch_px
from mammosynth.training.device import pick_device


def load_images(
    folder: str | Path, synthetic_only: bool = False, records: list | None = None, root: Path | None = None
) -> tuple[np.ndarray, list]:
    """All images of a dataset (or of the given ``records`` under ``root``) as one (N, H, W) float32 stack in
    [0, 1], and its records; every image must have the same size (evaluate prepared or generated sets).
    ``synthetic_only`` keeps the records marked synthetic when the set has any (an expanded dataset holds
    real and synthetic images)."""
    if records is None:
        dataset = load_dataset(folder)  # refuses an empty dataset itself
        records, root = dataset.records, dataset.root
    if synthetic_only and any(r.synthetic for r in records):
        records = [r for r in records if r.synthetic]
    stack, sizes = None, Counter()
    for k, record in enumerate(records):
        pixels = read_image(Path(root) / record.path).pixels
        sizes[pixels.shape] += 1
        if stack is None:  # filled in place: a list of images and then np.stack would hold the set twice
            stack = np.empty((len(records), *pixels.shape), np.float32)
        if pixels.shape == stack.shape[1:]:
            stack[k] = pixels
    if len(sizes) > 1:
        shown = ", ".join(f"{w}×{h} ({n})" for (h, w), n in sizes.most_common(3))
        raise InputError(folder, f"images have mixed resolutions: {shown}; run `mammosynth prepare` first")
    if stack is None:
        raise InputError(folder, "no images to evaluate")
    return stack, records


def select_split(folder: str | Path, splits: str, role: str, flag: str) -> tuple[list, Dataset, str]:
    """The records of a dataset in ``splits`` (``test``, ``val,test`` …, or ``all``), the dataset and a label
    saying which images they are. A dataset that records no splits at all is taken whole (``all, no split
    recorded``); one that records splits but none of those asked is refused, naming the ones it has."""
    dataset = load_dataset(folder)
    wanted = {s.strip() for s in splits.split(",") if s.strip()}
    unknown = wanted - {*SPLITS, "all"}
    if not wanted or unknown:
        raise InputError(
            flag,
            f"unknown split {', '.join(sorted(unknown)) or repr(splits)}; "
            f"use {', '.join(SPLITS)}, a comma list of them, or all",
        )
    present = Counter(r.split for r in dataset.records if r.split)
    if "all" in wanted:
        return dataset.records, dataset, "all"
    if not present:
        return dataset.records, dataset, "all (no split recorded)"
    chosen = [r for r in dataset.records if r.split in wanted]
    if not chosen:
        has = ", ".join(f"{k} {n}" for k, n in sorted(present.items()))
        raise InputError(
            folder, f"no {role} images in split {','.join(sorted(wanted))} (this dataset has {has}); pass {flag}"
        )
    return chosen, dataset, ",".join(sorted(wanted))


def _breast(image: np.ndarray) -> np.ndarray:
    region = breast_mask(image)
    return region if region.sum() >= 16 else np.ones_like(region)


def _spectra(images: np.ndarray, patch_px: int) -> list[float]:
    return spectrum_exponents(images, [_breast(image) for image in images], patch_px)


def _counts(records: list) -> dict:
    lesions = Counter(f.category for r in records for f in r.findings)
    return {
        "view": dict(Counter(str(r.view) for r in records)),
        "laterality": dict(Counter(str(r.laterality) for r in records)),
        "density": dict(Counter(str(r.density) for r in records)),
        "findings": dict(lesions),
        "images_with_findings": sum(bool(r.findings) for r in records),
    }


def has_lesion(record) -> int:
    """1 when a record shows a lesion, 0 when normal."""
    return int(bool(record.findings))


def requested_fields(records: list) -> dict[str, list]:
    """Per field, what each image requested (generator output: its provenance; otherwise what the record
    says, e.g. phantoms and real data); ``None`` where nothing was asked."""
    out: dict[str, list] = {"view": [], "laterality": [], "density": [], "lesion": []}
    for record in records:
        asked = asked_conditions(record)
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
        asked = asked_conditions(record)
        if asked is None:
            first = record.findings[0] if record.findings else None
            asked = {
                "category": first.category if first else "none",
                **({"pathology": first.pathology} if first else {}),
            }
        requests.append(asked)
        mask = next((f.mask_path for f in record.findings if f.mask_path), None)
        region = read_mask(root / mask) if mask and (root / mask).is_file() else None
        regions.append(region if region is None or region.shape == images.shape[1:] else None)
    return verifier_agreement(checker, images, requests, regions)


def evaluate_sets(
    real: str | Path,
    synthetic: str | Path,
    out: str | Path,
    train: str | Path | None = None,
    real_split: str = "test",
    train_split: str = "train",
    seed: int = 0,
    encoder_steps: int = 300,
    c2st_steps: int = 300,
    c2st_px: int = 128,
    features: str | None = None,
    run_utility: bool = True,
    utility_steps: int = 400,
    conditional_steps: int = 300,
    verifier: str | Path | None = None,
    frd: bool = False,
    shape_fits: int = 40,
    fid_min_images: int = FID_MIN_IMAGES,
    twins: dict | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    device: str = "auto",
) -> dict:
    """Fidelity (moments, histogram, spectra, shape, KID, FID from ``fid_min_images`` per set, optionally
    FRD), diversity (precision/recall/density/coverage, mode collapse), realism (C2ST), conditional
    correctness, utility (real / real+synthetic / synthetic-only classifiers), memorisation and
    re-identification of ``synthetic`` against **held-out real patients**. Writes ``out/evaluation.json``,
    ``out/report.html`` and ``out/encoder.safetensors`` (atomically, as one folder) and returns the numbers.

    The real set is the ``real_split`` split of ``real`` (``test`` by default; ``val,test`` or ``all`` also
    work); the generator's training set is the ``train_split`` split of ``train`` — by default of the same
    manifest — so a prepared folder evaluates on the patients the generator never saw. The two must share
    no patient (refused, one line); without a training set, memorisation and re-identification are skipped
    and the feature encoder is trained on the real set itself (said in the output). Every section states
    its n and which split it was computed on. The two-sample test works at ``c2st_px`` (at most the image
    size): at 64 px it half-missed a blur of 1 % of the width that it caught every time at 128 px.

    ``features`` replaces the self-trained encoder with a saved one (``PATH``) or ``ARCH:PATH`` weights
    (:func:`~mammosynth.evaluate.extractors.load_extractor`); ``verifier`` is a lesion-verifier checkpoint
    for lesion kind and position; ``frd`` adds the Fréchet Radiomics Distance (optional extra). ``device``
    (:func:`~mammosynth.training.device.pick_device`) is where the two-sample classifiers train: at 512 px
    a GPU is what makes the five-split C2ST practical.

    ``twins``: the result of :func:`~mammosynth.evaluate.twins.held_out_twins` on the same real split. The
    realism section then reports that test (synthetic twins of the held-out records, in their own mix)
    instead of a second one on ``synthetic``, whose mix of conditions may differ (a lesion-balanced set);
    the synthetic set's mix is still described.
    """
    check_output_dir(out, overwrite)  # refuse an existing --out before minutes of work
    classifier_device = pick_device(device)
    for flag, value in (
        ("--encoder-steps", encoder_steps),
        ("--c2st-steps", c2st_steps),
        ("--utility-steps", utility_steps),
        ("--conditional-steps", conditional_steps),
    ):
        check.flag(value, flag, lo=1, hi=1_000_000)
    check.flag(shape_fits, "shape_fits", lo=0, hi=100_000)
    if c2st_px < 16:
        raise InputError("--c2st-px", f"must be at least 16, got {c2st_px}")
    chosen, real_set, real_label = select_split(real, real_split, "real", "--real-split")
    if twins is not None and twins.get("split") != real_label:
        raise InputError(None, f"the held-out twins were tested on split {twins.get('split')}, not {real_label}")
    real_root, train_chosen, train_root, train_label = real_set.root, None, None, None
    if train is not None:
        train_chosen, train_set, train_label = select_split(train, train_split, "training", "--train-split")
        train_root = train_set.root
    elif real_label != "all" and not real_label.startswith("all ") and train_split in real_split.split(","):
        raise InputError("--train-split", f"split {train_split} is also the real split")
    elif real_label != "all" and not real_label.startswith("all "):
        candidates = [r for r in real_set.records if r.split in set(train_split.split(","))]
        if candidates:
            train, train_chosen, train_root, train_label = real, candidates, real_root, train_split
    if train_chosen is not None:
        shared = {r.patient_key for r in chosen} & {r.patient_key for r in train_chosen}
        if shared:
            raise InputError(
                real,
                f"the real set (split {real_label}) and the training set (split {train_label}) "
                f"share {len(shared)} patient(s); evaluation needs patients the generator never saw "
                "(use the test split of a prepared dataset, or --real-split)",
            )
    if frd and not frd_available():
        raise InputError(None, f"--frd needs the optional radiomics extra: {INSTALL_HINT}")
    for name, folder, records in (("real", real, chosen), ("training", train, train_chosen)):
        if records is not None and len(records) < 6:
            raise InputError(folder, f"the {name} set has {len(records)} images; the evaluation needs at least 6")
    real_images, real_records = load_images(real, records=chosen, root=real_root)
    synthetic_images, synthetic_records = load_images(synthetic, synthetic_only=True)
    if real_images.shape[1:] != synthetic_images.shape[1:]:
        raise InputError(
            synthetic,
            f"images are {synthetic_images.shape[2]}×{synthetic_images.shape[1]} but the real "
            f"ones are {real_images.shape[2]}×{real_images.shape[1]}; prepare both at one size",
        )
    if len(synthetic_images) < 6:
        raise InputError(
            synthetic, f"the synthetic set has {len(synthetic_images)} images; the evaluation needs at least 6"
        )
    extractor = load_extractor(features) if features else None  # bad weights fail before the long steps
    train_images = None
    if train_chosen is not None:
        train_images, train_chosen = load_images(train, records=train_chosen, root=train_root)
        if train_images.shape[1:] != synthetic_images.shape[1:]:
            raise InputError(train, "training images differ in size from the synthetic ones")
    steps = 8 + (train_images is not None) + run_utility + frd
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, steps)

    n_real, n_synthetic = len(real_images), len(synthetic_images)
    sizes = {"split": real_label, "real_images": n_real, "synthetic_images": n_synthetic}
    real_moments = np.stack([intensity_moments(im, _breast(im)) for im in real_images])
    synthetic_moments = np.stack([intensity_moments(im, _breast(im)) for im in synthetic_images])
    patch = spectrum_patch_px(real_images.shape[1])
    real_beta, synthetic_beta = _spectra(real_images, patch), _spectra(synthetic_images, patch)
    fidelity: dict = {
        **sizes,
        "moments": compare_moments(real_moments, synthetic_moments),
        "histogram_js_distance": counts_distance(breast_histogram(real_images), breast_histogram(synthetic_images)),
        "spectrum_beta": {
            "patch_px": patch,
            "real_median": float(np.median(real_beta)) if real_beta else None,
            "synthetic_median": float(np.median(synthetic_beta)) if synthetic_beta else None,
            "real_images": len(real_beta),
            "synthetic_images": len(synthetic_beta),
        },
    }
    if train_images is not None:
        # the floor of the moment tests on this split: the generator's own training images in its place, one of
        # the same view and density for each synthetic image
        fidelity["moments_training_reference"] = {
            "split": f"{train_label} vs {real_label}",
            "train_images": len(train_images),
            **training_reference(
                real_moments,
                np.stack([intensity_moments(im, _breast(im)) for im in train_images]),
                [(r.view, r.density) for r in train_chosen],
                [(r.view, r.density) for r in synthetic_records],
                seed=seed,
            ),
        }
    tick()
    fidelity["shape"] = compare_shapes(
        real_images,
        synthetic_images,
        np.array([r.view == "CC" for r in real_records]),
        np.array([r.view == "CC" for r in synthetic_records]),
        max_fits=shape_fits,
        seed=seed,
    )
    tick()
    encoder_data = (
        "given"
        if features
        else f"training split ({train_label})"
        if train_images is not None
        else (f"the real set itself ({real_label}; no training set given, so the features favour it)")
    )
    if extractor is None:
        extractor = train_encoder(
            train_images if train_images is not None else real_images, steps=encoder_steps, seed=seed
        )
    real_features, synthetic_features = extractor(real_images), extractor(synthetic_images)
    kid, kid_std = kernel_distance(real_features, synthetic_features, seed=seed)
    fid = frechet_with_interval(real_features, synthetic_features, min_images=fid_min_images, seed=seed)
    fidelity["features"] = {
        **sizes,
        "extractor": extractor.name,
        "encoder_trained_on": encoder_data,
        "encoder_steps": None if features else encoder_steps,
        "kernel_distance": kid,
        "kernel_distance_std": kid_std,
        "kernel_distance_subset": kid_subset_size(n_real, n_synthetic),
        "frechet_distance": fid["value"],
        "frechet": fid,
    }
    tick()
    if frd:
        fidelity["radiomics"] = {**sizes, **radiomics_distance(real_images, synthetic_images, seed=seed)}
        tick()
    k = min(5, len(real_features) - 1, len(synthetic_features) - 1)
    diversity = {**sizes, **precision_recall_density_coverage(real_features, synthetic_features, k=k)}
    collapse = {"split": real_label, **mode_collapse(real_features, synthetic_features, seed=seed)}
    tick()
    real_patients = [r.patient_key for r in real_records]
    mix = match_mix(real_records, synthetic_records, seed=seed)
    mix_described = {k: v for k, v in mix.items() if k != "indices"}
    if twins is not None:
        unindexed = ("most_synthetic", "least_synthetic")  # indices into the twins, not into ``synthetic``
        realism = {**{k: v for k, v in twins.items() if k not in unindexed}, "source": "held-out twins"}
        realism["mix"] = mix_described
    else:
        realism = {
            "split": real_label,
            **two_sample_test(
                real_images,
                synthetic_images[mix["indices"]],
                real_patients,
                work_px=min(c2st_px, real_images.shape[1]),
                steps=c2st_steps,
                seed=seed,
                device=classifier_device,
            ),
            "mix": mix_described,
        }
        for key in ("most_synthetic", "least_synthetic"):  # back to indices into the whole synthetic set
            realism[key] = [mix["indices"][i] for i in realism[key]]
    realism_lesions = {
        "split": real_label,
        **lesion_two_sample_test(
            real_images,
            real_records,
            synthetic_images,
            synthetic_records,
            steps=c2st_steps,
            seed=seed,
            device=classifier_device,
        ),
    }
    tick()
    # classifiers that need real training data learn on the training split and are scored on the held-out one
    # (cut to their 64² working size once, for both: a full-size copy of train + real is not needed)
    if train_images is not None:
        both_images = np.concatenate([work_stack(train_images, 64), work_stack(real_images, 64)])
        both_records = [*train_chosen, *real_records]
        held_out = np.arange(len(both_records)) >= len(train_images)
    else:
        both_images, both_records, held_out = work_stack(real_images, 64), real_records, None
    both_patients = [r.patient_key for r in both_records]
    conditional: dict = {
        "split": real_label if held_out is not None else f"patient-level split of {real_label}",
        "fields": conditional_agreement(
            both_images,
            requested_fields(both_records),
            both_patients,
            synthetic_images,
            requested_fields(synthetic_records),
            seed=seed,
            steps=conditional_steps,
            held_out=held_out,
        ),
    }
    conditional["verifier"] = (
        _verifier_section(verifier, synthetic_images, synthetic_records, Path(synthetic))
        if verifier
        else {"skipped": "no lesion-verifier checkpoint given (--verifier)"}
    )
    tick()
    result = {
        "mammosynth": __version__,
        "python": platform.python_version(),
        "seed": seed,
        "inputs": {
            "real": str(real),
            "synthetic": str(synthetic),
            "train": None if train is None else str(train),
            "real_split": real_label,
            "train_split": train_label,
            "real_images": n_real,
            "real_patients": len(set(real_patients)),
            "train_images": None if train_images is None else len(train_images),
            "train_patients": None if train_chosen is None else len({r.patient_key for r in train_chosen}),
            "synthetic_images": n_synthetic,
            "image_size": list(real_images.shape[1:]),
        },
        "settings": {
            "encoder_steps": encoder_steps,
            "c2st_steps": c2st_steps,
            "c2st_px": c2st_px,
            "c2st_device": classifier_device.type,
            "features": features,
            "utility_steps": utility_steps if run_utility else None,
            "conditional_steps": conditional_steps,
            "verifier": None if verifier is None else str(verifier),
            "frd": frd,
            "shape_fits": shape_fits,
            "fid_min_images": fid_min_images,
        },
        "counts": {"real": _counts(real_records), "synthetic": _counts(synthetic_records)},
        "fidelity": fidelity,
        "diversity": diversity,
        "mode_collapse": collapse,
        "realism_c2st": realism,
        "realism_lesions": realism_lesions,
        "conditional": conditional,
    }
    if run_utility:
        try:
            result["utility"] = {
                "split": (
                    f"trained on {train_label}, tested on {real_label}"
                    if held_out is not None
                    else f"patient-level split of {real_label}"
                ),
                **utility(
                    both_images,
                    np.array([has_lesion(r) for r in both_records]),
                    both_patients,
                    synthetic_images,
                    np.array([has_lesion(r) for r in synthetic_records]),
                    steps=utility_steps,
                    seed=seed,
                    held_out=held_out,
                ),
            }
        except InputError as exc:
            result["utility"] = {"skipped": exc.problem}
        tick()
    if train_images is not None:
        train_patients = [r.patient_key for r in train_chosen]
        result["memorisation"] = {
            "split": f"synthetic → {train_label}, reference {real_label} → {train_label}",
            **memorisation(synthetic_images, train_images, real_images, train_patients=train_patients),
            "held_out_images": n_real,
        }
        result["memorisation"]["feature_space"] = feature_copies(
            synthetic_features, extractor(train_images), real_features
        )
        result["reidentification"] = {
            "split": f"{train_label} vs {real_label}",
            **reidentification(synthetic_images, train_images, train_patients, real_images),
        }
        tick()
    else:
        reason = "no training set: give the generator's training images (--train, or a dataset with a train split)"
        result["memorisation"] = {"skipped": reason, "copies": None}
        result["reidentification"] = {"skipped": reason}
    plots = {
        "real_moments": real_moments,
        "synthetic_moments": synthetic_moments,
        "real_beta": real_beta,
        "synthetic_beta": synthetic_beta,
        "real_features": real_features,
        "synthetic_features": synthetic_features,
    }
    with atomic_output_dir(out, overwrite=overwrite) as tmp:
        (tmp / "evaluation.json").write_text(json.dumps(result, indent=1))
        write_report(tmp / "report.html", result, real_images, synthetic_images, train_images, plots, seed=seed)
        if features is None:
            save_encoder(extractor, tmp / "encoder.safetensors")
    tick()
    return result
