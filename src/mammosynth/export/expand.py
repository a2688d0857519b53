"""Expand a dataset: plan the synthetic images a target needs, make them with any trained generator,
pass each through the lesion-integrity check (with a verifier) and the privacy copy filter (regenerating
rejects with the next seed), and write the real and synthetic images together as one dataset with a
manifest (JSONL, CSV, parquet), optional DICOM / VinDr-style exports and a dataset card.

Resumable by construction: image ``i`` has a fixed name, seed and conditions, each finished image's record
is written atomically after its pixels, and a rerun skips the indices that have a record — interrupt it
and run the same command again for exactly the planned set, with no duplicate and no gap."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mammosynth import __version__
from mammosynth import validate as check
from mammosynth.datasets import load_dataset
from mammosynth.datasets.schema import Record, write_manifest
from mammosynth.errors import InputError
from mammosynth.evaluate.memorisation import NeighbourIndex
from mammosynth.export.plan import Plan, cell_of, plan_expansion
from mammosynth.generate.dataset import Draw, sample_checked, write_record
from mammosynth.generate.pipeline import load_pipeline
from mammosynth.generate.verify import LesionChecker
from mammosynth.io.atomic import atomic_write, remove_unfinished_writes
from mammosynth.io.images import image_size, read_image
from mammosynth.models.conditioning import validate_conditions

FORMATS = ("png", "dicom", "vindr")
PLAN_FILE, RECORDS = "plan.json", "records"
COPY_FILTER_PX = 64  # the copy filter compares images at this size (as the evaluation's memorisation check)


def _fingerprint(records: list[Record], checkpoint_id: str, plan: Plan, settings: dict) -> str:
    manifest = hashlib.sha256()
    for record in records:
        manifest.update(record.image_id.encode())
    payload = json.dumps(
        {"dataset": manifest.hexdigest(), "model": checkpoint_id, "plan": plan.to_dict(), "settings": settings},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _check_model(pipeline, plan: Plan, where: str) -> None:
    """Refuse requests the generator never saw in training (a model without malignant images cannot be
    asked for malignant masses; one trained on CC only cannot make MLO)."""
    if not pipeline.uses_conditions:
        return  # a translator renders the phantom's label map; the conditions shape the layout only
    seen = pipeline.describe().get("trained_on") or {}
    labels, views = set(seen.get("labels") or {}), set(seen.get("views") or {})
    needs = {"none": "normal", "benign-mass": "benign", "malignant-mass": "malignant"}
    for conditions in plan.images:
        lesion, view = conditions.get("lesion"), conditions.get("view")
        if labels and lesion in needs and needs[lesion] not in labels:
            raise InputError(
                where,
                f"the model was trained without {needs[lesion]} images "
                f"({', '.join(sorted(labels))}) but the plan asks for {lesion}",
            )
        if views and view and view not in views:
            raise InputError(
                where,
                f"the model was trained without {view} views ({', '.join(sorted(views))}) but the plan asks for them",
            )


def _copy_real(dataset, out: Path) -> list[Record]:
    """Copy the real images and every file their records name (masks, label maps, parameters) under
    ``out/real`` with the paths rewritten, and return the rewritten records."""
    root = dataset.root.resolve()

    def relocate(relative: str) -> str:
        source = (root / relative).resolve()
        if not source.is_relative_to(root) or not source.is_file():
            return relative
        target = out / "real" / relative
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")
            shutil.copyfile(source, partial)
            partial.replace(target)
        return f"real/{relative}"

    def walk(value):
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return relocate(value) if isinstance(value, str) and value and not value.startswith("/") else value

    records = []
    for record in dataset.records:
        copied = Record.from_dict(record.to_dict())
        copied.path = relocate(record.path)
        for finding in copied.findings:
            if finding.mask_path:
                finding.mask_path = relocate(finding.mask_path)
        copied.extra = walk(copied.extra)
        records.append(copied)
    return records


def expand_dataset(
    dataset: str | Path,
    out: str | Path,
    checkpoint: str | Path,
    target: str = "balanced",
    by: tuple[str, ...] | None = None,
    seed: int = 0,
    formats: tuple[str, ...] = ("png",),
    verify: str | Path | None = None,
    copy_filter: bool = True,
    include_real: bool = True,
    sampler: str = "ddim",
    steps: int = 50,
    guidance: float = 3.0,
    layout: str = "none",
    batch_size: int = 8,
    max_attempts: int = 5,
    upscale: str | Path | list[str | Path] | None = None,
    dry_run: bool = False,
    evaluate: bool = False,
    overwrite: bool = False,
    device: str = "auto",
    ray_address: str | None = None,
    ray_workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Plan, generate and write an expanded dataset (see the module docstring); returns the summary that is
    also written to ``out/expand.json``. ``dry_run`` returns the plan and writes nothing; ``evaluate`` runs
    the evaluation of the synthetic images against the dataset (``out/evaluation/``, summary in the card);
    ``upscale`` follows the generator with refining stages (super-resolution, lesion painter; checkpoints in order).
    ``ray_address`` makes the batches as Ray tasks (``"local"``: a local cluster of ``ray_workers`` CPUs;
    otherwise a running cluster whose nodes see ``out``): the output is the same bit for bit as one process
    makes."""
    for name in formats:
        if name not in FORMATS:
            raise InputError(None, f"unknown output format {name!r}; known: {', '.join(FORMATS)}")
    if dry_run and overwrite:
        raise InputError(None, "--dry-run writes nothing, so --overwrite contradicts it; drop one")
    check.flag(batch_size, "--batch-size", lo=1, hi=65_536)
    check.flag(max_attempts, "--max-attempts", lo=1, hi=1000)
    source = load_dataset(dataset)
    plan = plan_expansion(source.records, target, by, seed)
    summary: dict = {
        "dataset": str(dataset),
        "plan": {
            "by": list(plan.by),
            "target": target,
            "cells": plan.cells,
            "synthetic_images": plan.total,
            "ignored_unknown": plan.ignored_unknown,
        },
    }
    if dry_run:
        return summary
    pipeline = load_pipeline(str(checkpoint), device, upscale=upscale)
    if pipeline.needs_layout and layout == "none":
        layout = "phantom"
    real_size = image_size(source.image_path(source.records[0]))
    if real_size != (pipeline.size, pipeline.size):
        raise InputError(
            checkpoint,
            f"the model makes {pipeline.size}×{pipeline.size} images but {dataset} holds "
            f"{real_size[0]}×{real_size[1]}; prepare the dataset at {pipeline.size} or use a model "
            "trained at its size",
        )
    _check_model(pipeline, plan, str(checkpoint))
    sampled = pipeline.uses_sampler
    settings = {
        "sampler": sampler if sampled else None,
        "steps": steps if sampled else None,
        "guidance": guidance if sampled else None,
        "layout": layout,
        "verify": None if verify is None else str(verify),
        "copy_filter": copy_filter,
        "max_attempts": max_attempts,
        "include_real": include_real,
    }
    fingerprint_settings = dict(settings)
    settings["evaluate"] = evaluate
    # where the stages are (the model id, part of the fingerprint, already names what they are)
    settings["upscale"] = [str(u) for u in ([upscale] if isinstance(upscale, str | Path) else upscale or [])]
    fingerprint = _fingerprint(source.records, pipeline.model_id, plan, fingerprint_settings)
    out = Path(out)
    session = contextlib.nullcontext(None)
    if ray_address is not None:
        from mammosynth.export.ray_expand import ray_session

        session = ray_session(ray_address, ray_workers)
    try:
        with session as ray:
            return _run(
                source,
                out,
                pipeline,
                plan,
                fingerprint,
                settings,
                summary,
                str(checkpoint),
                formats,
                verify,
                batch_size,
                overwrite,
                device,
                ray,
                progress,
            )
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
            raise InputError(
                out,
                f"cannot write ({exc.strerror}); make room and run the same command again to continue where it stopped",
            ) from None
        raise


def _run(
    source,
    out: Path,
    pipeline,
    plan: Plan,
    fingerprint: str,
    settings: dict,
    summary: dict,
    checkpoint: str,
    formats: tuple[str, ...],
    verify,
    batch_size: int,
    overwrite: bool,
    device: str,
    ray,
    progress,
) -> dict:
    plan_path = out / PLAN_FILE
    if out.exists() and not out.is_dir():
        raise InputError(out, "output path is a file")
    # everything that reads the inputs (the verifier, every real image for the copy filter) before anything
    # is written: a corrupt image is one line, and no plan.json or records/ is left behind
    checker = LesionChecker(str(verify), 0.5, device) if verify else None
    index = threshold = None
    if settings["copy_filter"]:
        # straight to the filter's working size: a stack at full size would grow with the dataset (10,000 real
        # 256² images are 2.6 GB; at 64² 160 MB)
        references = np.stack(
            [_square(read_image(source.image_path(r)).pixels, COPY_FILTER_PX) for r in source.records]
        )
        patients = [r.patient_key for r in source.records]
        index = NeighbourIndex(references, work_px=COPY_FILTER_PX, patients=patients)
        threshold = index.copy_threshold() if len(set(patients)) > 1 else 0.999
    if plan_path.is_file():
        previous = json.loads(plan_path.read_text())
        if previous.get("fingerprint") != fingerprint:
            if not overwrite:
                raise InputError(
                    out,
                    "holds a different expansion (other dataset, model, target or settings); "
                    "choose another folder or pass --overwrite",
                )
            shutil.rmtree(out)
    elif out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise InputError(out, "output folder exists and is not empty; pass --overwrite to replace it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    if not plan_path.is_file():
        with atomic_write(plan_path, "w") as handle:
            json.dump(
                {
                    "fingerprint": fingerprint,
                    "checkpoint": checkpoint,
                    "model": pipeline.describe(),
                    "settings": settings,
                    **plan.to_dict(),
                },
                handle,
                indent=1,
            )
    (out / RECORDS).mkdir(exist_ok=True)
    job = ChunkJob(
        out=out,
        plan_seed=plan.seed,
        images=plan.images,
        settings=settings,
        checkpoint=checkpoint,
        verify=None if verify is None else str(verify),
        device=device,
        index=index,
        threshold=threshold,
    )
    job.adopt(pipeline, checker)
    chunks = chunk_indices(plan.total, batch_size)
    todo = [chunk for chunk in chunks if not all(job.has_record(i) for i in chunk)]
    started, made = time.perf_counter(), 0
    finished = sum(len(c) for c in chunks) - sum(len(c) for c in todo)
    if progress:
        progress(finished, plan.total)
    if ray is not None:
        from mammosynth.export.ray_expand import run_on_ray

        made = run_on_ray(ray, job, todo, progress, finished, plan.total)
    else:
        for chunk in todo:
            made += job.run(chunk)
            finished += len(chunk)
            if progress:
                progress(finished, plan.total)
    seconds = time.perf_counter() - started
    return _finish(source, out, pipeline, plan, summary, formats, settings, made, seconds, threshold)


def _square(pixels: np.ndarray, size: int) -> np.ndarray:
    from mammosynth.preprocess.resize import resize_image

    return pixels if pixels.shape == (size, size) else resize_image(pixels, size, size)


def _save_record(out: Path, data: dict) -> None:
    with atomic_write(out / RECORDS / f"{data['image_id']}.json", "w") as handle:
        json.dump(data, handle)


def chunk_indices(total: int, batch_size: int) -> list[list[int]]:
    """The plan's indices cut into batches at fixed boundaries (multiples of ``batch_size``): a batch is the
    unit of work, so every image is drawn in the same batch by one process, by N Ray workers and by a rerun
    (a batch with a missing record is redone whole), and the output is the same bit for bit.

    Example:
        >>> chunk_indices(5, 2)
        [[0, 1], [2, 3], [4]]
    """
    return [list(range(first, min(first + batch_size, total))) for first in range(0, total, batch_size)]


class ChunkJob:
    """What it takes to make any batch of an expansion's plan, in this process or in a Ray worker: the
    generator and verifier are loaded from their checkpoints once per process (:meth:`ready`), the copy
    filter's index travels with the job. :meth:`run` writes a batch's records (each atomically, after its
    pixels; a batch drawn again after a kill writes only what is missing) and returns how many images it made."""

    def __init__(
        self,
        out: Path,
        plan_seed: int,
        images: list[dict],
        settings: dict,
        checkpoint: str,
        verify: str | None,
        device: str,
        index: NeighbourIndex | None,
        threshold: float | None,
    ) -> None:
        self.out, self.plan_seed, self.images, self.settings = out, plan_seed, images, settings
        self.checkpoint, self.verify, self.device = checkpoint, verify, device
        self.index, self.threshold = index, threshold
        self._loaded: tuple | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_loaded": None}  # models are loaded again where the job runs

    def adopt(self, pipeline, checker: LesionChecker | None) -> None:
        """Use models this process has already loaded."""
        self._loaded = (pipeline, checker)

    def ready(self) -> tuple:
        if self._loaded is None:
            upscale = self.settings.get("upscale") or None
            pipeline = load_pipeline(self.checkpoint, self.device, upscale=upscale)
            checker = LesionChecker(self.verify, 0.5, self.device) if self.verify else None
            self._loaded = (pipeline, checker)
        return self._loaded

    def has_record(self, i: int) -> bool:
        return (self.out / RECORDS / f"syn{i:07d}.json").is_file()

    def run(self, chunk: list[int]) -> int:
        pipeline, checker = self.ready()
        settings = self.settings
        rows = {
            i: {"conditions": validate_conditions(self.images[i], f"plan image {i}"), "guidance": None} for i in chunk
        }
        screen = None
        if self.index is not None:
            index, threshold = self.index, self.threshold

            def screen(images: np.ndarray) -> list[dict]:  # the copy filter: refuse a near-copy of a real image
                nearest = index.query(images)[1]
                return [
                    {"nearest_real_correlation": float(c), "threshold": threshold, "passed": bool(c <= threshold)}
                    for c in nearest
                ]

        draw = Draw(
            self.plan_seed,
            sampler=settings["sampler"] or "ddim",
            steps=settings["steps"] or 1,
            guidance=settings["guidance"] or 0.0,
            layout=settings["layout"],
        )
        made = 0
        written = {i for i in chunk if self.has_record(i)}  # drawn again with the batch, not written again
        for outcome in sample_checked(pipeline, rows, chunk, draw, checker, settings["max_attempts"], screen):
            i = outcome.index
            if i in written:
                continue
            if outcome.rejected:
                reject = {"image_id": f"syn{i:07d}", "rejected": True, "reason": outcome.rejected}
                _save_record(self.out, {**reject, "attempts": outcome.attempt + 1})
                continue
            record = write_record(
                self.out,
                i,
                outcome.batch,
                outcome.k,
                pipeline,
                outcome.verdict,
                "standard",
                pipeline.spacing_mm,
                {
                    "sampler": settings["sampler"],
                    "steps": settings["steps"],
                    "layout": settings["layout"],
                    "base_seed": self.plan_seed,
                    "attempt": outcome.attempt,
                    "batch": outcome.batch_indices,
                    "plan_cell": self.images[i],
                },
            )
            if outcome.screen is not None:
                record.extra["provenance"]["copy_filter"] = outcome.screen
            _save_record(self.out, record.to_dict())
            made += 1
        return made


def _finish(
    source,
    out: Path,
    pipeline,
    plan: Plan,
    summary: dict,
    formats: tuple[str, ...],
    settings: dict,
    made: int,
    seconds: float,
    threshold: float | None,
) -> dict:
    from mammosynth.export.card import write_card
    from mammosynth.export.formats import write_dicom_set, write_tables, write_vindr

    # every writer is done: a worker or a run killed mid-write left its temporary file (the rerun wrote the
    # file itself again)
    remove_unfinished_writes(out)
    saved = [json.loads(p.read_text()) for p in sorted((out / RECORDS).glob("syn*.json"))]
    rejected = [s for s in saved if s.get("rejected")]
    synthetic = [Record.from_dict(s) for s in saved if not s.get("rejected")]
    real = _copy_real(source, out) if settings["include_real"] else []
    records = real + synthetic
    write_manifest(out, records)
    tables = write_tables(out, records)
    before = Counter(" / ".join(cell_of(r, plan.by)) for r in source.records)
    after = (
        Counter(" / ".join(cell_of(r, plan.by)) for r in records)
        if real
        else Counter(" / ".join(cell_of(r, plan.by)) for r in source.records + synthetic)
    )
    summary.update(
        {
            "out": str(out),
            "synthetic_images": len(synthetic),
            "real_images": len(real),
            "rejected": {"count": len(rejected), "by_reason": dict(Counter(s["reason"] for s in rejected))},
            "seconds_this_run": round(seconds, 2),
            "made_this_run": made,
            "images_per_second": round(made / seconds, 3) if seconds > 0 and made else None,
            "model": {k: v for k, v in pipeline.describe().items() if k != "trained_on"},
            "trained_on": pipeline.describe().get("trained_on"),
            "settings": settings,
            "copy_threshold": threshold,
            "counts_before": dict(before),
            "counts_after": dict(after),
            "tables": tables,
            "mammosynth": __version__,
        }
    )
    if "dicom" in formats:
        summary["dicom"] = write_dicom_set(out, synthetic, pipeline.describe()["family"])
    if "vindr" in formats:
        summary["vindr"] = write_vindr(out, records)
    evaluation = None
    if settings.get("evaluate"):
        from mammosynth.evaluate.suite import evaluate_sets

        # the dataset's held-out (test) patients against the synthetic images; its train split is the generator's
        evaluation = evaluate_sets(source.root, out, out / "evaluation", seed=plan.seed, overwrite=True)
        summary["evaluation"] = {
            "report": "evaluation/report.html",
            "c2st_auc": evaluation["realism_c2st"]["auc"],
            "copies": evaluation["memorisation"]["copies"],
        }
    with atomic_write(out / "expand.json", "w") as handle:
        json.dump(summary, handle, indent=1)
    write_card(out / "README.md", summary, evaluation)
    return summary
