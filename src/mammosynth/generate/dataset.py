"""Generate a synthetic dataset in the record schema: batched, verified, each image with the provenance
needed to make it again bit for bit (model hash, sampler, steps, guidance, seed, conditions, layout)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mammosynth import __version__
from mammosynth import validate as check
from mammosynth.datasets.schema import Finding, Record, write_manifest
from mammosynth.errors import InputError
from mammosynth.generate.conditions import condition_rows, region_from_conditions, region_from_mask
from mammosynth.generate.layout import layout_seed, phantom_layouts
from mammosynth.generate.pipeline import Pipeline, load_pipeline
from mammosynth.generate.verify import LesionChecker
from mammosynth.io.atomic import atomic_output_dir, atomic_write
from mammosynth.io.images import write_png
from mammosynth.models.conditioning import FIELDS, SPATIAL_CHANNELS
from mammosynth.phantom.dataset import image_seed
from mammosynth.training.device import SAMPLE_BYTES_PER_PIXEL, check_batch_memory

LAYOUTS = ("none", "phantom")
ORIENTATIONS = ("standard", "native")


def attempt_seed(seed: int, index: int, attempt: int) -> int:
    """Seed of image ``index`` at resampling ``attempt`` (attempt 0 is :func:`image_seed`)."""
    if attempt == 0:
        return image_seed(seed, index)
    return int(np.random.SeedSequence([int(seed), int(index), int(attempt)]).generate_state(1, dtype=np.uint32)[0])


def generate_dataset(
    checkpoint: str | Path,
    out: str | Path,
    n: int | None = None,
    conditions: dict | None = None,
    model: str | None = None,
    table: str | Path | None = None,
    mask: str | Path | None = None,
    seed: int = 0,
    sampler: str = "ddim",
    steps: int = 50,
    guidance: float = 3.0,
    guide_fields: list[str] | None = None,
    batch_size: int = 8,
    layout: str = "none",
    orientation: str = "standard",
    verify: str | Path | None = None,
    max_attempts: int = 5,
    threshold: float = 0.5,
    start: int = 0,
    upscale: str | Path | list[str | Path] | None = None,
    overwrite: bool = False,
    device: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Generate images for a conditioning spec into a new dataset folder ``out``; ``upscale`` (one or more
    refining checkpoints: super-resolution, lesion painter) follows the generator with them (a cascade: images
    at the last one's size).

    Image ``i`` (counting from ``start``) uses seed ``attempt_seed(seed, i, attempt)``; with ``verify`` (a
    verifier checkpoint) a rejected image is resampled with the next attempt's seed, up to
    ``max_attempts``; images still rejected are left out and counted.
    """
    if layout not in LAYOUTS:
        raise InputError(None, f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
    if orientation not in ORIENTATIONS:
        raise InputError(None, f"unknown orientation {orientation!r}; known: {', '.join(ORIENTATIONS)}")
    check.flag(batch_size, "--batch-size", lo=1, hi=65_536)
    check.flag(max_attempts, "--max-attempts", lo=1, hi=1000)
    guidable = (*FIELDS, "lesion_geometry", "spatial")
    for name in guide_fields or []:
        if name not in guidable:
            raise InputError(None, f"cannot guide {name!r}; guidable fields: {', '.join(guidable)}")
    rows = condition_rows(n, conditions, table)
    pipeline = load_pipeline(str(checkpoint), device, family=model, upscale=upscale)
    if pipeline.needs_layout and layout == "none":
        layout = "phantom"  # a translator generates from label maps: draw them with the parametric model
    size, spacing = pipeline.size, pipeline.spacing_mm
    check_batch_memory(min(batch_size, len(rows)), size, pipeline.device, "--batch-size", SAMPLE_BYTES_PER_PIXEL)
    mask_region = None
    if mask is not None:
        mask_region, implied = region_from_mask(mask, size, spacing)
        for row in rows:
            row["conditions"] = {**implied, **row["conditions"]}
    checker = LesionChecker(str(verify), threshold, device) if verify else None
    sampling = {"sampler": sampler, "steps": steps} if pipeline.uses_sampler else {"sampler": None, "steps": None}
    draw = Draw(seed, start, sampler, steps, guidance, guide_fields, layout, mask_region)
    started = time.perf_counter()
    records: list[Record] = []
    attempts_total, rejected = 0, []
    with atomic_output_dir(out, overwrite) as tmp:
        for first in range(0, len(rows), batch_size):
            indices = list(range(first, min(first + batch_size, len(rows))))
            for outcome in sample_checked(pipeline, rows, indices, draw, checker, max_attempts):
                attempts_total += outcome.attempt + 1
                if outcome.rejected:
                    rejected.append(outcome.index + start)
                    continue
                records.append(
                    write_record(
                        tmp,
                        outcome.index + start,
                        outcome.batch,
                        outcome.k,
                        pipeline,
                        outcome.verdict,
                        orientation,
                        spacing,
                        dict(
                            **sampling,
                            guide_fields=guide_fields,
                            layout=layout,
                            base_seed=seed,
                            attempt=outcome.attempt,
                            batch=[p + start for p in outcome.batch_indices],
                        ),
                    )
                )
            if progress:
                progress(indices[-1] + 1, len(rows))
        records.sort(key=lambda r: r.image_id)
        write_manifest(tmp, records)
        seconds = time.perf_counter() - started
        summary = {
            "out": str(out),
            "images": len(records),
            "requested": len(rows),
            "seconds": round(seconds, 2),
            "images_per_second": round(len(records) / max(seconds, 1e-9), 3),
            "model": pipeline.describe(),
            **sampling,
            "guidance": guidance if pipeline.uses_sampler else None,
            "seed": seed,
            "layout": layout,
            "orientation": orientation,
            "verify": None
            if checker is None
            else {
                "verifier_id": checker.model_id,
                "threshold": threshold,
                "max_attempts": max_attempts,
                "samples_drawn": attempts_total,
                "accepted": len(records),
                "rejected_after_max_attempts": rejected,
                "acceptance_rate": round(len(records) / max(attempts_total, 1), 4),
            },
            "counts": {
                "label": dict(Counter(r.label for r in records)),
                "view": dict(Counter(str(r.view) for r in records)),
                "laterality": dict(Counter(str(r.laterality) for r in records)),
                "density": dict(Counter(str(r.density) for r in records)),
            },
        }
        with atomic_write(tmp / "generate.json", "w") as handle:
            json.dump(summary, handle, indent=2)
    return summary


@dataclass(frozen=True)
class Draw:
    """How a run draws its images: base ``seed``, the index of its first image (``start``), the sampler
    settings (ignored by families without a sampler), the layout and a fixed lesion region if any."""

    seed: int
    start: int = 0
    sampler: str = "ddim"
    steps: int = 50
    guidance: float = 3.0
    guide_fields: list[str] | None = None
    layout: str = "none"
    mask_region: np.ndarray | None = None


@dataclass
class Outcome:
    """One image's fate in :func:`sample_checked`: accepted (its ``batch`` and position ``k`` in it) or
    ``rejected`` with the reason after ``max_attempts`` draws."""

    index: int
    attempt: int
    batch_indices: list[int]
    batch: dict | None = None
    k: int = 0
    verdict: dict | None = None
    screen: dict | None = None
    rejected: str | None = None


def sample_checked(
    pipeline: Pipeline,
    rows: Sequence[dict] | Mapping[int, dict],
    indices: list[int],
    draw: Draw,
    checker: LesionChecker | None,
    max_attempts: int,
    screen: Callable[[np.ndarray], list[dict]] | None = None,
) -> Iterator[Outcome]:
    """Sample → verify → resample, the loop ``generate`` and ``expand`` share: draw the ``indices`` rows in
    one batch, ask the lesion ``checker`` (if any) and ``screen`` (if any: one ``{"passed": bool, …}`` per
    image, e.g. the copy filter) about each image, and draw the refused ones again with their next attempt's
    seed until they pass or ``max_attempts`` draws are spent. Yields one :class:`Outcome` per index."""
    attempt = dict.fromkeys(indices, 0)
    pending = list(indices)
    while pending:
        batch = make_batch(pipeline, rows, pending, attempt, draw)
        verdicts = checker.check(batch["images"], batch["conditions"], batch["regions"]) if checker else None
        screens = screen(batch["images"]) if screen else None
        still = []
        for k, i in enumerate(pending):
            verdict = verdicts[k] if verdicts else None
            screened = screens[k] if screens else None
            refused = screened is not None and not screened["passed"]
            if (verdict is None or verdict["accepted"]) and not refused:
                yield Outcome(i, attempt[i], list(pending), batch, k, verdict, screened)
            elif attempt[i] + 1 < max_attempts:
                attempt[i] += 1
                still.append(i)
            else:
                reason = "copy filter" if refused else "lesion verifier"
                yield Outcome(i, attempt[i], list(pending), verdict=verdict, screen=screened, rejected=reason)
        pending = still


def make_batch(
    pipeline: Pipeline, rows: Sequence[dict] | Mapping[int, dict], pending: list[int], attempt: dict, draw: Draw
) -> dict:
    """Draw the ``pending`` rows once (at their current ``attempt``): images, the conditions used, seeds,
    spatial maps, phantom parameters and lesion regions."""
    seed, start, layout, mask_region = draw.seed, draw.start, draw.layout, draw.mask_region
    size = pipeline.size
    seeds = [attempt_seed(seed, i + start, attempt[i]) for i in pending]
    spatial, labels, params, regions = None, None, [], []
    conditions = pipeline.locate([rows[i]["conditions"] for i in pending], seeds)
    if layout == "phantom":
        layout_seeds = [layout_seed(seed, i + start) for i in pending]
        labels, spatial, params = phantom_layouts(layout_seeds, size, [rows[i]["conditions"] for i in pending])
        for k, p in enumerate(params):
            conditions[k] = {"view": p.view, "laterality": p.laterality, "density": p.density, **conditions[k]}
    for k in range(len(pending)):
        if mask_region is not None:
            regions.append(mask_region)
        elif spatial is not None and spatial[k, SPATIAL_CHANNELS.index("lesion")].any():
            regions.append(spatial[k, SPATIAL_CHANNELS.index("lesion")] > 0)
        else:
            regions.append(region_from_conditions(conditions[k], size, pipeline.spacing_mm))
    guidances = [rows[i]["guidance"] if rows[i]["guidance"] is not None else draw.guidance for i in pending]
    images = pipeline.sample(
        conditions,
        seeds,
        sampler=draw.sampler,
        steps=draw.steps,
        guidance=guidances,
        guide_fields=draw.guide_fields,
        spatial=spatial,
        labels=labels if pipeline.uses_labels else None,
    )
    return {
        "images": images,
        "conditions": conditions,
        "seeds": seeds,
        "spatial": spatial,
        "params": params,
        "regions": regions,
        "guidance": guidances,
        "requested": [rows[i]["conditions"] for i in pending],
    }


def write_record(
    tmp: Path,
    index: int,
    batch: dict,
    k: int,
    pipeline: Pipeline,
    verdict: dict | None,
    orientation: str,
    spacing: float | None,
    settings: dict,
) -> Record:
    conditions = batch["conditions"][k]
    image_id = f"syn{index:07d}"
    mirror = orientation == "native" and conditions.get("laterality") == "R"
    flip = (lambda a: a[:, ::-1]) if mirror else (lambda a: a)
    image = batch["images"][k]
    write_png(tmp / f"images/{image_id}.png", flip(image), bits=16)
    findings = []
    region = batch["regions"][k]
    if conditions.get("category") not in (None, "none"):
        mask_rel = None
        if region is not None:
            mask_rel = f"masks/{image_id}_finding0.png"
            write_png(tmp / mask_rel, flip(region.astype(np.uint8) * 255), bits=8)
        findings.append(
            Finding(
                category=conditions["category"],
                pathology=conditions.get("pathology", "unknown"),
                geometry="mask" if mask_rel else None,
                mask_path=mask_rel,
                attributes={"requested": True},
            )
        )
    provenance = {
        "generator": f"mammosynth {__version__}",
        "torch": torch.__version__,
        **pipeline.describe(),
        **settings,
        "seed": batch["seeds"][k],
        "guidance": batch["guidance"][k] if pipeline.uses_sampler else None,
        "conditions": conditions,
        "requested": batch["requested"][k],
        "index": index,
        "orientation": orientation,
        "mirrored": mirror,
    }
    provenance.pop("trained_on", None)
    if batch["params"]:
        provenance["phantom_params"] = json.loads(batch["params"][k].to_json())
    if verdict is not None:
        provenance["verifier"] = verdict
    size = image.shape[0]
    return Record(
        image_id=image_id,
        path=f"images/{image_id}.png",
        dataset="mammosynth-synthetic",
        patient_key=f"synthetic-{image_id}",
        view=conditions.get("view"),
        laterality=conditions.get("laterality"),
        density=conditions.get("density"),
        birads=conditions.get("birads"),
        findings=findings,
        spacing_mm=spacing,
        width=size,
        height=size,
        extra={"synthetic": True, "provenance": provenance},
    )
