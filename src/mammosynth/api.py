"""The Python API: one function per CLI verb, with the same name and arguments as the command."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from mammosynth import validate as check
from mammosynth.contact_sheet import contact_sheet
from mammosynth.datasets import count_dataset, load_dataset
from mammosynth.errors import InputError
from mammosynth.io.atomic import atomic_write, check_output_dir
from mammosynth.io.images import read_image, write_png
from mammosynth.phantom import (
    PhantomParams,
    make_phantom_dataset,
)
from mammosynth.phantom.frame import fit_publication
from mammosynth.preprocess import breast_mask, chest_wall_side, prepare_dataset

Progress = Callable[[int, int], None] | None


def inspect(
    path: str | Path,
    format: str = "auto",
    mapping: str | Path | None = None,
    salt: str | None = None,
    skip_bad: bool = False,
) -> dict:
    """Counts by view, laterality, density, label, finding and pathology of any dataset folder (with
    ``skip_bad``, less the images whose annotation has a bad value: listed in ``bad_annotations``)."""
    dataset = load_dataset(path, format=format, mapping=mapping, salt=salt, skip_bad=skip_bad)
    table = count_dataset(dataset)
    table["dataset"] = {
        "name": dataset.name,
        "root": str(dataset.root),
        "skipped_missing_files": len(dataset.skipped),
        "missing_files": dataset.skipped,
        "bad_annotations": dataset.bad_annotations,
        "warnings": dataset.warnings,
    }
    return table


def prepare(
    path: str | Path,
    out: str | Path,
    size: int = 256,
    format: str = "auto",
    mapping: str | Path | None = None,
    salt: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    skip_bad: bool = False,
    seed: int = 0,
    check_burned_in: bool = False,
    dataset_name: str | None = None,
    progress: Progress = None,
) -> dict:
    """Prepare a dataset (segment, orient, crop, normalise, resize, split) into ``out``.

    ``dataset_name`` is the name written into every record (and so into every later output); without it a
    folder gets a keyed hash of its name (a folder may be named after a patient), a known repository its own
    name (``mini-mias``, ``vindr-mammo`` …).

    Burned-in labels, markers and tape that touch the breast are cut out of it (and so blacked out); the result
    counts the images they were found on. ``check_burned_in`` also writes ``burned-in.csv`` (each such image,
    how many pieces and what share of the source image) and ``burned-in.png`` (those images, what was
    removed outlined in magenta) into ``out`` for a person to check."""
    check_output_dir(out, overwrite)
    if dataset_name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", dataset_name):
        raise InputError(
            "--dataset-name", "use 1–64 letters, digits, '.', '_' or '-' (it is written into every record)"
        )
    dataset = load_dataset(path, format=format, mapping=mapping, salt=salt, skip_bad=skip_bad)
    if dataset_name is not None:
        dataset = replace(
            dataset, name=dataset_name, records=[replace(r, dataset=dataset_name) for r in dataset.records]
        )
    start = time.perf_counter()
    folder, skipped = prepare_dataset(
        dataset,
        out,
        size=size,
        salt=salt,
        workers=workers,
        overwrite=overwrite,
        skip_bad=skip_bad,
        seed=seed,
        progress=progress,
    )
    seconds = time.perf_counter() - start
    prepared = load_dataset(folder)
    burned_in = [r for r in prepared.records if r.extra["prepare"]["burned_in"]["regions"]]
    if check_burned_in:
        _write_burned_in_check(Path(folder), prepared, burned_in)
    return {
        "out": str(folder),
        "images": len(prepared),
        "skipped": skipped,
        "missing_files": dataset.skipped,
        "bad_annotations": dataset.bad_annotations,
        "warnings": json.loads((Path(folder) / "prepare.json").read_text())["warnings"],
        "seconds": round(seconds, 2),
        "images_per_second": round(len(prepared) / max(seconds, 1e-9), 2),
        "burned_in_removed": len(burned_in),
        "counts": count_dataset(prepared),
    }


def _write_burned_in_check(folder: Path, prepared, records: list) -> None:
    """``burned-in.csv`` and ``burned-in.png`` (see :func:`prepare`): pseudonymous ids and the prepared, already
    cleaned images only, so nothing that was removed reaches them."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["image_id", "split", "regions", "removed_share_of_image", "in_prepared_frame"])
    for record in records:
        info = record.extra["prepare"]["burned_in"]
        writer.writerow([record.image_id, record.split, info["regions"], info["removed_share"], "mask" in info])
    with atomic_write(folder / "burned-in.csv", "w") as handle:
        handle.write(buffer.getvalue())
    shown = [r for r in records if "mask" in r.extra["prepare"]["burned_in"]]
    if shown:  # a copy: the caller still counts the whole prepared dataset
        contact_sheet(replace(prepared, records=shown), folder / "burned-in.png", max_images=48, columns=8)


def phantom(
    out: str | Path,
    n: int = 100,
    size: int | None = None,
    view: str | None = None,
    laterality: str | None = None,
    density: str | None = None,
    lesion: str = "none",
    mode: str = "empirical",
    seed: int = 0,
    colorset: int = 1,
    params: str | Path | None = None,
    translate: str | Path | None = None,
    overwrite: bool = False,
    device: str = "auto",
    progress: Progress = None,
) -> dict:
    """Render ``n`` phantom mammograms (or one from a parameter JSON) with label maps and a manifest.

    ``size`` defaults to 256 px. With ``translate`` (a translation checkpoint or run folder) each label map
    is drawn in the prepared frame at the model's size and rendered by the model instead of analytically.
    """
    check.flag(n, "--n", lo=1, hi=check.MAX_IMAGES_PER_CALL)
    if size is not None:
        check.flag(size, "--size", lo=16, hi=4096)
    if colorset not in (1, 2):
        raise InputError("--colorset", f"must be 1 or 2 (the publication's two colour sets), got {colorset}")
    check_output_dir(out, overwrite)
    render, translator = None, None
    if translate is not None:
        from mammosynth.generate.pipeline import TranslationPipeline

        pipeline = TranslationPipeline(str(translate), device)
        if size is not None and size != pipeline.size:
            raise InputError(
                translate,
                f"this translator makes {pipeline.size} px images; drop --size or pass --size {pipeline.size}",
            )
        size = pipeline.size
        translator = {k: v for k, v in pipeline.describe().items() if k != "trained_on"}

        def render(labels, seed):
            return pipeline.translate(labels, [seed])[0]

    size = 256 if size is None else size
    if params is not None:
        path = Path(params)
        try:
            loaded = PhantomParams.from_dict(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(path, f"cannot read phantom parameters ({exc})") from None
        except InputError as exc:
            raise InputError(path, exc.problem) from None
        from mammosynth.datasets import write_manifest
        from mammosynth.io.atomic import atomic_output_dir
        from mammosynth.phantom import write_phantom

        with atomic_output_dir(out, overwrite=overwrite) as tmp:
            write_manifest(tmp, [write_phantom(loaded, tmp, "phantom000000", size, colorset, render, translator)])
        return {"out": str(out), "images": 1}
    folder = make_phantom_dataset(
        out,
        n=n,
        size=size,
        view=view,
        laterality=laterality,
        density=density,
        lesion=lesion,
        mode=mode,
        seed=seed,
        colorset=colorset,
        overwrite=overwrite,
        progress=progress,
        translate=render,
        translator=translator,
    )
    return {"out": str(folder), "images": n, "counts": count_dataset(load_dataset(folder))}


def fit(image: str | Path, frame_px: tuple[int, int] | None = None) -> dict:
    """Fit the six CC outline parameters to the breast in ``image`` (any supported format).

    ``outline`` is in the publication's convention, found by its own estimator (Banterle et al.: chest wall
    on the right, y up, the image zero-padded to ``frame_px`` = (rows, columns), the largest image of the set
    it is fitted with, or to itself when ``None``; :mod:`mammosynth.phantom.skin_line`);
    ``phantom_outline`` is the same curve in the phantom's frame, ready for ``phantom --params``; ``iou`` is
    its overlap with the breast.
    """
    pixels = read_image(image).pixels
    mask = breast_mask(pixels)
    if mask is None:
        raise InputError(image, "no breast found in the image")
    if chest_wall_side(mask) == "right":
        mask, pixels = mask[:, ::-1], pixels[:, ::-1]
    outline, frame, iou = fit_publication(mask, frame_px, image=pixels)
    return {
        "outline": asdict(outline),
        "phantom_outline": asdict(frame.phantom_outline(outline)),
        "frame_px": list(frame_px or mask.shape),
        "iou": round(iou, 4),
    }


DEMO_SIZE = 64  # the demo generator's image size
DEMO_CONFIG = "cpu-64-labels"  # the demo's GAN: renders the parametric model's label maps (configs/gan/)
DEMO_TRAIN_BUDGET_S = 180.0  # the demo's training wall time on any machine (the whole demo stays within 5 min)
DEMO_SHAPE_FITS = 6  # outline fits per set in the demo's evaluation (each about 0.7 s of Nelder–Mead)
DEMO_CLASSIFIER_STEPS = 150  # the demo's conditional-agreement and utility classifiers (real and synthetic alike)
DEMO_MIX = (("none", 0.6), ("benign-mass", 0.15), ("malignant-mass", 0.15), ("calcification", 0.10))


def demo(
    out: str | Path = "demo-output",
    n: int = 200,
    train_steps: int | None = None,
    train_budget: str | float | None = DEMO_TRAIN_BUDGET_S,
    seed: int = 0,
    overwrite: bool = False,
    progress: Progress = None,
) -> dict:
    """The main job on the embedded default, end to end with no data and no download: an imbalanced
    phantom dataset (60 % normal) → prepare → train a small conditional GAN that renders the parametric
    model's label maps (``gan/cpu-64-labels`` for ``train_budget`` of wall time, 3 min by default, ``None`` for
    none; ``train_steps`` caps its steps) → expand to a lesion-balanced set (copy filter on) → evaluate
    against the held-out phantom patients (realism on held-out twins,
    :func:`~mammosynth.evaluate.twins.held_out_twins`, in the held-out mix; the rest on the expansion) → HTML
    report, dataset card and contact sheets. Writes ``summary.json`` with the time of every stage."""
    out = check_output_dir(out, overwrite)
    if out.exists():
        import shutil

        shutil.rmtree(out)
    out.mkdir(parents=True)
    if n < 20:
        raise InputError(None, "the demo needs at least 20 phantom images (--n)")
    stages: dict[str, float] = {}
    total_steps = 5

    def stage(name: str, started: float, done: int) -> float:
        stages[name] = round(time.perf_counter() - started, 2)
        if progress:
            progress(done, total_steps)
        return time.perf_counter()

    clock = start = time.perf_counter()
    size = DEMO_SIZE
    parts, first = [], 0
    for k, (lesion, share) in enumerate(DEMO_MIX):
        count = n - first if k == len(DEMO_MIX) - 1 else round(n * share)
        part = out / "phantom" / lesion
        make_phantom_dataset(part, n=count, size=size * 2, lesion=lesion, seed=seed, overwrite=True, start=first)
        parts.append(part)
        first += count
    merged = out / "phantom" / "all"
    _merge(parts, merged)
    clock = stage("phantom", clock, 1)
    prepared = prepare(merged, out / "prepared", size=size, overwrite=True, seed=seed)
    clock = stage("prepare", clock, 2)
    trained = train(
        out / "prepared",
        out / "run",
        model="gan",
        config=DEMO_CONFIG,
        set=[f"train.steps={train_steps}"] if train_steps else None,
        time_budget=train_budget,
    )
    clock = stage("train", clock, 3)
    expanded = expand(out / "prepared", out / "expanded", out / "run", target="balanced", seed=seed)
    clock = stage("expand", clock, 4)
    from mammosynth.evaluate.suite import evaluate_sets
    from mammosynth.evaluate.twins import held_out_twins
    from mammosynth.export.card import write_card

    # held-out phantom patients against the synthetic images: the GAN learned from the train split only and
    # nothing here selects on val, so val and test are both unseen (twice the n of test alone). Realism is
    # tested once, on twins of the held-out records (their own mix); the lesion-balanced expansion has no new
    # normal images, so a second test on it would measure its mix as well
    twins = held_out_twins(out / "prepared", out / "run", out / "held-out-twins", real_split="val,test", seed=seed)
    evaluation = evaluate_sets(
        out / "prepared",
        out / "expanded",
        out / "expanded" / "evaluation",
        real_split="val,test",
        seed=seed,
        shape_fits=DEMO_SHAPE_FITS,
        conditional_steps=DEMO_CLASSIFIER_STEPS,
        utility_steps=DEMO_CLASSIFIER_STEPS,
        twins=twins,
    )
    write_card(out / "expanded" / "README.md", expanded, evaluation)
    clock = stage("evaluate", clock, 5)
    sheet = contact_sheet(load_dataset(out / "prepared"), out / "contact_sheet.png")
    synthetic = load_dataset(out / "expanded")
    synthetic.records = [r for r in synthetic.records if r.synthetic]
    synthetic_sheet = contact_sheet(synthetic, out / "synthetic_contact_sheet.png")
    summary = {
        "phantom_images": n,
        "prepared": prepared["out"],
        "prepared_counts": prepared["counts"],
        "generator": {
            "run": str(out / "run"),
            "steps": trained["steps"],
            "stopped_by": trained["stopped_by"],
            "train_budget_s": trained["train_budget_s"],
            "config": f"gan/{DEMO_CONFIG}",
            "images_per_second": trained["images_per_second"],
        },
        "expanded": str(out / "expanded"),
        "synthetic_images": expanded["synthetic_images"],
        "counts_before": expanded["counts_before"],
        "counts_after": expanded["counts_after"],
        "report": str(out / "expanded" / "evaluation" / "report.html"),
        "dataset_card": str(out / "expanded" / "README.md"),
        "contact_sheet": str(sheet),
        "synthetic_contact_sheet": str(synthetic_sheet),
        "evaluation": {
            "real_split": evaluation["inputs"]["real_split"],
            "real_images": evaluation["inputs"]["real_images"],
            "synthetic_images": evaluation["inputs"]["synthetic_images"],
            "expanded_mix_matched": evaluation["realism_c2st"]["mix"]["matched"],
            "held_out_twins_c2st_auc": twins["auc"],
            "held_out_twins_c2st_auc_ci95": twins["auc_ci95"],
            "held_out_twins_c2st_auc_repeats": twins["auc_repeats"],
            "kernel_distance": evaluation["fidelity"]["features"]["kernel_distance"],
            "kernel_distance_std": evaluation["fidelity"]["features"]["kernel_distance_std"],
            "coverage": evaluation["diversity"]["coverage"],
            "copies": evaluation["memorisation"]["copies"],
        },
        "seconds": {**stages, "total": round(time.perf_counter() - start, 2)},
    }
    with atomic_write(out / "summary.json", "w") as handle:
        json.dump(summary, handle, indent=2)
    return summary


def pack(
    data: str | Path,
    size: int | None = None,
    labels: bool = False,
    workers: int = 0,
    progress: Progress = None,
) -> dict:
    """Pack a prepared dataset for streaming: every image decoded once at ``size`` pixels (default: the
    prepared size) into fixed-stride arrays beside its manifest (``packed-<size>px/``), which ``train`` then
    reads one example at a time, from any number of ``train.workers``, with RAM flat in the dataset's size.
    ``labels`` adds the derived label maps the translation family (and a GAN built with ``model.labels``)
    trains on. A pack of an older manifest is ignored by ``train``; packing again replaces it.
    """
    from mammosynth.datasets.schema import iter_manifest
    from mammosynth.training.packed import pack as pack_arrays

    data = Path(data)
    check.flag(workers, "--workers", lo=0, hi=256)
    if size is None:
        first = next(iter_manifest(data), None)
        if first is None or not first.width:
            raise InputError(data, "no image sizes in the manifest; pass --size")
        size = int(first.width)
    check.flag(size, "--size", lo=16, hi=4096)
    folder = pack_arrays(data, size, labels=labels, workers=workers, progress=progress)
    return {
        "pack": str(folder),
        "images": json.loads((folder / "index.json").read_text())["images"],
        "size": size,
        "labels": labels,
        "bytes": sum(f.stat().st_size for f in folder.iterdir()),
    }


def train(
    data: str | Path,
    out: str | Path,
    model: str = "ldm",
    config: str | Path = "tiny",
    set: list[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    device: str = "auto",
    time_budget: str | float | None = None,
    progress: Progress = None,
) -> dict:
    """Train a model family (``ldm``, ``gan``, ``translation``, ``verifier``) on a prepared dataset into
    the run folder ``out``.

    ``set`` overrides config values (``["train.steps=100"]``); ``resume`` continues from the newest
    checkpoint in ``out`` (after a crash or kill -9, or to extend ``train.steps``). ``time_budget``
    (seconds, or ``"45m"``, ``"1.5h"``) ends the run when that much wall time has been spent over all its
    sessions, with a checkpoint; ``train.steps`` stays the ceiling.
    """
    from mammosynth.training import Trainer, distributed, find_checkpoint, load_config, task_class
    from mammosynth.training.config import parse_duration
    from mammosynth.training.data import PreparedImages
    from mammosynth.training.device import check_batch_memory, pick_device

    if resume and overwrite:
        raise InputError(out, "--resume and --overwrite contradict each other; pick one")
    if time_budget is not None:
        set = [*(set or []), f"train.time_budget_s={parse_duration(time_budget)}"]
    cfg = load_config(model, config, set)
    rank, world = distributed.init_from_env()  # torchrun: one process per device, the global batch shared
    if cfg["train"].batch_size % world:
        raise InputError(
            f"{cfg['source']}: train.batch_size",
            f"the global batch {cfg['train'].batch_size} does not split among {world} processes",
        )
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(out, "run folder path is a file")
    has_run = out.is_dir() and (find_checkpoint(out) is not None or (out / "config.json").exists())
    if has_run and not resume and not overwrite:
        raise InputError(out, "run folder already has a run; pass --resume to continue it or --overwrite to restart")
    if out.is_dir() and any(out.iterdir()) and not has_run and not overwrite:
        raise InputError(out, "run folder exists and is not empty; pass --overwrite or choose another folder")
    distributed.barrier()  # every rank has looked at the folder before rank 0 changes it
    if overwrite and out.is_dir() and rank == 0:
        import shutil

        for name in ("checkpoints", "tensorboard", "samples", "losses.jsonl", "config.json"):
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    chosen = pick_device(device)
    side = getattr(cfg["model"], "crop_size", 0) or cfg["model"].image_size
    check_batch_memory(cfg["train"].batch_size // world, side, chosen, f"{cfg['source']}: train.batch_size")
    task = task_class(model)(cfg["model"], cfg["train"], chosen)
    # from the dataset's pack at this size when there is one (mammosynth pack): then nothing is cached in RAM
    dataset = PreparedImages(data, size=cfg["model"].image_size, labels=task.uses_labels)
    result = Trainer(task, dataset, out, cfg, rank=rank, world=world, progress=progress).run(resume=resume)
    distributed.finish()  # on success only: a rank that failed must not wait at a barrier the others never reach
    return result


def generate(
    checkpoint: str | Path,
    out: str | Path,
    n: int | None = None,
    model: str | None = None,
    view: str | None = None,
    laterality: str | None = None,
    density: str | None = None,
    birads: str | None = None,
    lesion: str | None = None,
    lesion_size_mm: float | None = None,
    lesion_x: float | None = None,
    lesion_y: float | None = None,
    conditions: str | Path | None = None,
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
    upscale: str | Path | list[str | Path] | None = None,
    overwrite: bool = False,
    device: str = "auto",
    progress: Progress = None,
) -> dict:
    """Generate ``n`` images (or one per row of a ``conditions`` CSV) into a dataset folder ``out`` with a
    trained generator (``model`` checks the checkpoint's family; default: whatever it is), followed by the
    refining stages in ``upscale`` (super-resolution, lesion painter) when given."""
    from mammosynth.generate import generate_dataset
    from mammosynth.models.sampling import SAMPLERS

    if sampler not in SAMPLERS:  # a GAN ignores the sampler, but a misspelt one is still a mistake
        raise InputError("--sampler", f"unknown sampler {sampler!r}; known: {', '.join(SAMPLERS)}")
    flags = {
        "view": view,
        "laterality": laterality,
        "density": density,
        "birads": birads,
        "lesion": lesion,
        "lesion_size_mm": lesion_size_mm,
        "lesion_x": lesion_x,
        "lesion_y": lesion_y,
    }
    return generate_dataset(
        checkpoint,
        out,
        n=n,
        model=model,
        conditions=flags,
        table=conditions,
        mask=mask,
        seed=seed,
        sampler=sampler,
        steps=steps,
        guidance=guidance,
        guide_fields=guide_fields,
        batch_size=batch_size,
        layout=layout,
        orientation=orientation,
        verify=verify,
        max_attempts=max_attempts,
        upscale=upscale,
        overwrite=overwrite,
        device=device,
        progress=progress,
    )


def inpaint(
    image: str | Path,
    mask: str | Path,
    checkpoint: str | Path,
    out: str | Path,
    lesion: str | None = None,
    remove: bool = False,
    view: str | None = None,
    laterality: str | None = None,
    density: str | None = None,
    seed: int = 0,
    sampler: str = "ddim",
    steps: int = 50,
    guidance: float = 3.0,
    grow_px: int | None = None,
    overwrite: bool = False,
    device: str = "auto",
) -> dict:
    """Insert a lesion of kind ``lesion`` inside ``mask`` of a healthy prepared image, or ``remove`` the
    lesion under ``mask``; writes a 16-bit PNG and a JSON sidecar with the provenance. Pixels outside the
    mask (grown by ``grow_px``: 0 to insert, 2 to remove by default) are left bit-identical."""
    from mammosynth.generate import DiffusionPipeline
    from mammosynth.generate.conditions import region_from_mask
    from mammosynth.models.conditioning import validate_conditions

    if remove == (lesion is not None):
        raise InputError(image, "say either --lesion KIND (insert) or --remove, not both or neither")
    if lesion == "none":
        raise InputError(image, "--lesion none inserts nothing; use --remove to take a lesion out")
    if grow_px is not None and not 0 <= grow_px <= 64:
        raise InputError("--grow-px", f"must be 0–64 pixels, got {grow_px}")
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise InputError(out, "output must be a .png file")
    if out.exists() and not overwrite:
        raise InputError(out, "output exists; pass --overwrite to replace it")
    pipeline = DiffusionPipeline(str(checkpoint), device)
    pixels = read_image(image).pixels
    if pixels.shape != (pipeline.size, pipeline.size):
        raise InputError(
            image,
            f"image is {pixels.shape[1]}×{pixels.shape[0]}; the model inpaints "
            f"{pipeline.size}×{pipeline.size} prepared images",
        )
    region, implied = region_from_mask(mask, pipeline.size, pipeline.spacing_mm)
    conditions = {"view": view, "laterality": laterality, "density": density}
    conditions = validate_conditions({**conditions, "lesion": "none" if remove else lesion}, "command line")
    if not remove:
        conditions.update(implied)
    grow = (2 if remove else 0) if grow_px is None else grow_px
    result, changed = pipeline.inpaint(
        pixels, region, conditions, seed, remove=remove, sampler=sampler, steps=steps, guidance=guidance, grow_px=grow
    )
    write_png(out, result, bits=16)
    provenance = {
        "source_image": Path(image).name,
        "mask": Path(mask).name,
        "operation": "remove" if remove else "insert",
        "conditions": conditions,
        "seed": seed,
        "sampler": sampler,
        "steps": steps,
        "guidance": guidance,
        "grow_px": grow,
        **pipeline.describe(),
        "changed_pixels": int(changed.sum()),
        "unchanged_outside_mask": True,
    }
    provenance.pop("trained_on", None)
    with atomic_write(out.with_suffix(".json"), "w") as handle:
        json.dump(provenance, handle, indent=2)
    return {"out": str(out), **provenance}


def evaluate(
    real: str | Path,
    synthetic: str | Path,
    out: str | Path,
    train: str | Path | None = None,
    real_split: str = "test",
    train_split: str = "train",
    seed: int = 0,
    features: str | None = None,
    verifier: str | Path | None = None,
    run_utility: bool = True,
    frd: bool = False,
    encoder_steps: int = 300,
    c2st_steps: int = 300,
    c2st_px: int = 128,
    utility_steps: int = 400,
    conditional_steps: int = 300,
    overwrite: bool = False,
    progress: Progress = None,
    device: str = "auto",
) -> dict:
    """Compare a synthetic dataset with held-out real patients (the ``real_split`` of ``real``, ``test`` by
    default) — fidelity, diversity, realism, conditional correctness, utility, memorisation and
    re-identification against the training set (the ``train_split`` of ``train``, by default of ``real``);
    writes ``out/evaluation.json`` and ``out/report.html``. See :func:`mammosynth.evaluate.suite.evaluate_sets`."""
    from mammosynth.evaluate.suite import evaluate_sets

    return evaluate_sets(
        real,
        synthetic,
        out,
        train=train,
        real_split=real_split,
        train_split=train_split,
        seed=seed,
        features=features,
        verifier=verifier,
        run_utility=run_utility,
        frd=frd,
        encoder_steps=encoder_steps,
        c2st_steps=c2st_steps,
        c2st_px=c2st_px,
        utility_steps=utility_steps,
        conditional_steps=conditional_steps,
        overwrite=overwrite,
        progress=progress,
        device=device,
    )


def calibrate(
    checkpoint: str | Path,
    prepared: str | Path,
    out: str | Path,
    upscale: str | Path | list[str | Path] | None = None,
    split: str = "train",
    seed: int = 0,
    steps: int = 30,
    batch_size: int = 16,
    spectrum: bool = False,
    overwrite: bool = False,
    device: str = "auto",
    progress: Progress = None,
) -> dict:
    """Fit an intensity map (:mod:`mammosynth.generate.calibration`) for a generator (with its ``upscale``
    stages): one image for each ``split`` image of ``prepared`` (the generator's training split), its pooled
    breast intensities mapped onto theirs (with ``spectrum``, after a tilt of the breast's power spectrum to
    their median β); writes ``out`` (JSON), used as ``generate … --upscale out``. Returns the path, the
    largest gap of the pooled breast quantiles from the training images' before and after the map, the
    per-image standard deviation's median and the median β (generated, mapped, training)."""
    from mammosynth.evaluate.moments import intensity_moments
    from mammosynth.evaluate.suite import load_images, select_split
    from mammosynth.generate.calibration import LEVEL, calibrate_pipeline, median_beta
    from mammosynth.generate.pipeline import load_pipeline
    from mammosynth.models.conditioning import conditions_from_record

    out = Path(out)
    if out.suffix.lower() != ".json":
        raise InputError(out, "the intensity map is a .json file (it is passed back as --upscale FILE.json)")
    if out.exists() and not overwrite:
        raise InputError(out, "exists; pass --overwrite to replace it")
    check.flag(steps, "--steps", lo=1, hi=1000)
    check.flag(batch_size, "--batch-size", lo=1, hi=4096)
    records, dataset, label = select_split(prepared, split, "training", "--split")
    pipeline = load_pipeline(str(checkpoint), device, upscale=upscale)
    real, records = load_images(prepared, records=records, root=dataset.root)
    if real.shape[-1] != pipeline.size:
        raise InputError(prepared, f"images are {real.shape[-1]} px, the generator makes {pipeline.size} px")
    conditions = [conditions_from_record(r) for r in records]
    fitted_on = {"split": label, "images": len(records), "patients": len({r.patient_key for r in records})}
    mapping, made = calibrate_pipeline(
        pipeline,
        conditions,
        real,
        seed=seed,
        batch_size=batch_size,
        steps=steps,
        fitted_on=fitted_on,
        progress=progress,
        spectrum=spectrum,
    )

    def median_std(images) -> float | None:  # over images with a breast (an untrained generator's may have none)
        found = [intensity_moments(im, im > LEVEL)[1] for im in images if (im > LEVEL).sum() >= 2]
        return round(float(np.median(found)), 4) if found else None

    mapped = mapping.apply(made)
    inside = made > LEVEL  # the generated breast pixels, before and after the map

    def gap(values) -> float:  # the largest difference of their quantiles from the training images'
        quantiles = np.quantile(values, np.linspace(0, 1, len(mapping.target)))
        return round(float(np.abs(quantiles - mapping.target).max()), 4)

    summary = {
        "intensity_map": str(out),
        **fitted_on,
        "quantile_gap": {"generated": gap(made[inside]), "mapped": gap(mapped[inside])},
        "std_median": {
            "generated": median_std(made),
            "mapped": median_std(mapped),
            "training": median_std(real),
        },
        "spectral_tilt": mapping.spectral_tilt,
        "beta_median": {
            name: None if beta is None else round(beta, 3)
            for name, beta in (
                ("generated", median_beta(made)),
                ("mapped", median_beta(mapped)),
                ("training", median_beta(real)),
            )
        },
    }
    mapping.save(out)
    return summary


def expand(
    dataset: str | Path,
    out: str | Path,
    checkpoint: str | Path,
    target: str = "balanced",
    by: list[str] | None = None,
    seed: int = 0,
    formats: list[str] | None = None,
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
    ray: str | None = None,
    ray_workers: int | None = None,
    progress: Progress = None,
) -> dict:
    """Expand a dataset to a target balance with synthetic images from a trained generator (lesion check,
    copy filter, resumable), writing one dataset with manifests, optional DICOM / VinDr exports and a
    dataset card. ``ray`` makes the batches as Ray tasks: ``"local"`` starts a local cluster of ``ray_workers``
    CPUs, an address joins a running cluster (the output is the same bit for bit). See
    :func:`mammosynth.export.expand.expand_dataset`."""
    from mammosynth.export.expand import expand_dataset

    return expand_dataset(
        dataset,
        out,
        checkpoint,
        target=target,
        by=tuple(by) if by else None,
        seed=seed,
        formats=tuple(formats or ("png",)),
        verify=verify,
        copy_filter=copy_filter,
        include_real=include_real,
        sampler=sampler,
        steps=steps,
        guidance=guidance,
        layout=layout,
        batch_size=batch_size,
        max_attempts=max_attempts,
        upscale=upscale,
        dry_run=dry_run,
        evaluate=evaluate,
        overwrite=overwrite,
        device=device,
        ray_address=ray,
        ray_workers=ray_workers,
        progress=progress,
    )


def regenerate(
    folder: str | Path,
    row: str,
    checkpoint: str | Path | None = None,
    out: str | Path | None = None,
    device: str = "auto",
    upscale: str | Path | list[str | Path] | None = None,
) -> dict:
    """Remake one synthetic image from its provenance and say whether it is bit-identical to the stored one.
    See :func:`mammosynth.export.regenerate.regenerate`."""
    from mammosynth.export.regenerate import regenerate as remake

    return remake(folder, row, checkpoint=checkpoint, out=out, device=device, upscale=upscale)


def create_study(
    real: str | Path,
    synthetic: str | Path,
    folder: str | Path = "mammosynth-app",
    name: str = "study",
    readers: list[str] | None = None,
    per_class: int = 20,
    size: int = 256,
    seed: int = 0,
) -> dict:
    """Create a blinded real-vs-synthetic reader study in the app folder; returns the tokens (shown once).
    See :class:`mammosynth.app.study.StudyStore`."""
    from mammosynth.app.study import StudyStore

    return StudyStore(folder).create_study(
        name, real, synthetic, per_class=per_class, readers=readers, size=size, seed=seed
    )


def serve(
    folder: str | Path = "mammosynth-app",
    host: str = "127.0.0.1",
    port: int = 8765,
    translator: str | Path | None = None,
    device: str = "auto",
) -> None:
    """Run the web app (designer, reader study) until interrupted. See :mod:`mammosynth.app.server`."""
    from mammosynth.extras import EXTRAS, require

    require("app", EXTRAS["app"], "serve")
    from mammosynth.app.server import serve as run

    run(folder, host=host, port=port, translator=translator, device=device)


def _merge(parts: list[Path], merged: Path) -> None:
    """Join phantom folders into one dataset folder (relative paths kept unique by image id)."""
    import shutil

    from mammosynth.datasets import iter_manifest, write_manifest

    if merged.exists():
        shutil.rmtree(merged)
    records = []
    for part in parts:
        for sub in ("images", "labels", "labels_rgb", "params", "masks"):
            if (part / sub).is_dir():
                shutil.copytree(part / sub, merged / sub, dirs_exist_ok=True)
        records.extend(iter_manifest(part))
    write_manifest(merged, records)
