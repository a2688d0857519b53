"""Drawing phantom parameters: uniform in the real-data bounds, the median, or the empirical
distribution (a Gaussian with the mean and covariance of the fitted real outlines of one class,
truncated to their bounds). Summary numbers ship as package data; no image does."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import numpy as np
from scipy import ndimage as ndi

from mammosynth.errors import InputError
from mammosynth.phantom.labelmap import breast_region
from mammosynth.phantom.params import CalcCluster, Mass, Outline, PhantomParams

MODES = ("empirical", "uniform", "median")
LESIONS = ("none", "benign-mass", "malignant-mass", "calcification")
OUTLINE_CLASSES = ("all", "normal", "benign", "malignant")


@lru_cache(maxsize=1)
def outline_stats() -> dict:
    return json.loads(resources.files("mammosynth.phantom").joinpath("data/cc_outline_stats.json").read_text())


def sample_outline(rng: np.random.Generator, mode: str = "empirical", outline_class: str = "all") -> Outline:
    if mode not in MODES:
        raise InputError(None, f"unknown sampling mode {mode!r}; known: {', '.join(MODES)}")
    stats = outline_stats()
    if outline_class not in stats["classes"]:
        raise InputError(None, f"unknown outline class {outline_class!r}; known: {', '.join(stats['classes'])}")
    c = stats["classes"][outline_class]
    lo, hi = np.array(c["min"]), np.array(c["max"])
    if mode == "median":
        values = np.array(c["median"])
    elif mode == "uniform":
        values = rng.uniform(lo, hi)
    else:
        for _ in range(100):
            values = rng.multivariate_normal(c["mean"], c["cov"])
            if np.all(values >= lo) and np.all(values <= hi):
                break
        values = np.clip(values, lo, hi)
    return Outline(**dict(zip(stats["names"], map(float, values), strict=True)))


def _inside_point(params: PhantomParams, rng: np.random.Generator, margin: float = 0.06) -> tuple[float, float]:
    """A random point well inside the breast (fractions of the image)."""
    size = 128
    region = breast_region(params, size)
    depth = ndi.distance_transform_edt(np.hstack([np.ones((size, 1), bool), region]))[:, 1:]
    candidates = np.argwhere(depth > margin * size)
    if candidates.size == 0:
        candidates = np.argwhere(region)
    y, x = candidates[rng.integers(len(candidates))]
    return (float(x) + 0.5) / size, (float(y) + 0.5) / size


def sample_params(
    seed: int,
    view: str | None = None,
    laterality: str | None = None,
    density: str | None = None,
    lesion: str = "none",
    mode: str = "empirical",
    lesion_size_mm: float | None = None,
) -> PhantomParams:
    """One phantom's parameters, a pure function of its arguments (so of ``seed``)."""
    if lesion not in LESIONS:
        raise InputError(None, f"unknown lesion {lesion!r}; known: {', '.join(LESIONS)}")
    rng = np.random.default_rng(seed)
    outline_class = {"benign-mass": "benign", "malignant-mass": "malignant"}.get(lesion, "normal")
    params = PhantomParams(
        view=view or str(rng.choice(["CC", "MLO"])),
        laterality=laterality or str(rng.choice(["L", "R"])),
        density=density or str(rng.choice(list("ABCD"), p=[0.1, 0.4, 0.4, 0.1])),
        outline=sample_outline(rng, mode, outline_class),
        nipple_position=float(rng.uniform(-0.2, 0.2)),
        skin_mm=float(rng.uniform(1.5, 3.0)),
        pectoral=(float(rng.uniform(0.3, 0.55)), float(rng.uniform(0.25, 0.5))),
        seed=int(seed),
    )
    if lesion in ("benign-mass", "malignant-mass"):
        kind = lesion.split("-")[0]
        shapes = ("round", "oval", "lobulated") if kind == "benign" else ("irregular", "spiculated", "lobulated")
        x, y = _inside_point(params, rng)
        params.masses.append(
            Mass(
                kind=kind,
                shape=str(rng.choice(shapes)),
                size_mm=lesion_size_mm or float(rng.uniform(8, 25)),
                x=x,
                y=y,
                rotation_deg=float(rng.uniform(0, 180)),
            )
        )
    elif lesion == "calcification":
        x, y = _inside_point(params, rng)
        params.calcifications.append(
            CalcCluster(
                x=x,
                y=y,
                count=int(rng.integers(6, 20)),
                spread_mm=float(rng.uniform(3, 8)),
                particle_mm=float(rng.uniform(0.3, 0.8)),
                kind=str(rng.choice(["benign", "malignant"])),
            )
        )
    return params.validate()
