"""Command line: a thin typer skin over :mod:`mammosynth.api` (same verbs, same arguments)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from mammosynth import api
from mammosynth.errors import InputError
from mammosynth.io.atomic import output_name

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Synthetic mammograms, checked with numbers.")
datasets_app = typer.Typer(no_args_is_help=True, help="Look at datasets.")
app.add_typer(datasets_app, name="datasets")
console = Console(stderr=True)


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    )
    bar = Progress(*columns, console=console, transient=False)
    task = None

    def update(done: int, total: int, status: str = "") -> None:
        nonlocal task
        if task is None:  # start drawing only once work starts, so input errors print alone
            bar.start()
            task = bar.add_task(description, total=total, status="")
        bar.update(task, completed=done, total=total, status=status)

    try:
        yield update
    finally:
        if task is not None:
            bar.stop()


def _print(result: dict) -> None:
    typer.echo(json.dumps(result, indent=2, default=str))


def _counts_table(counts: dict) -> None:
    out = Console()
    for field, values in counts.items():
        if field == "dataset":
            continue
        table = Table(title=field, title_justify="left")
        for value in values:
            table.add_column(str(value), justify="right")
        table.add_row(*[str(v) for v in values.values()])
        out.print(table)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("demo-output"),
    n: Annotated[int, typer.Option(help="Phantom images to render (60 % normal).")] = 200,
    train_steps: Annotated[
        int | None, typer.Option(help="Most generator training steps (default: the config's).")
    ] = None,
    train_budget: Annotated[
        str, typer.Option(help="Generator training wall time, e.g. 180s or 5m (none: no limit).")
    ] = f"{api.DEMO_TRAIN_BUDGET_S:g}s",
    seed: int = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
) -> None:
    """Main job on the embedded default: phantom data → prepare → train a GAN → expand to a balanced set →
    evaluate → HTML report and dataset card."""
    with progress_bar("demo") as update:
        result = api.demo(
            out=out,
            n=n,
            train_steps=train_steps,
            train_budget=None if train_budget == "none" else train_budget,
            seed=seed,
            overwrite=overwrite,
            progress=update,
        )
    _print(result)


@app.command()
def prepare(
    path: Annotated[Path, typer.Argument(help="Dataset folder (mini-MIAS, VinDr, CBIS-DDSM, CSV, images).")],
    out: Annotated[Path, typer.Option(help="Prepared dataset folder to write.")],
    size: Annotated[int, typer.Option(help="Square output size: 64/128/256/512/1024.")] = 256,
    format: Annotated[str, typer.Option(help="auto, manifest, mini-mias, vindr, cbis-ddsm, csv, folder.")] = "auto",
    mapping: Annotated[Path | None, typer.Option(help="Column mapping YAML for a CSV dataset.")] = None,
    salt: Annotated[str | None, typer.Option(help="Pseudonymisation secret (default: per-user).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: 2 or fewer).")] = None,
    overwrite: bool = False,
    skip_bad: Annotated[
        bool, typer.Option(help="Leave out unreadable images and images with a bad annotation instead of stopping.")
    ] = False,
    seed: int = 0,
    check_burned_in: Annotated[
        bool,
        typer.Option(help="Also write burned-in.csv and burned-in.png: the images labels were cut from, to check."),
    ] = False,
    dataset_name: Annotated[
        str | None,
        typer.Option(
            help="Name written into every record (default: a hash of the folder's name, or the repository's)."
        ),
    ] = None,
) -> None:
    """Segment, orient (chest wall left), crop, normalise, resize and split a dataset; burned-in labels that
    touch the breast are cut out."""
    with progress_bar("prepare") as update:
        result = api.prepare(
            path,
            out,
            size=size,
            format=format,
            mapping=mapping,
            salt=salt,
            workers=workers,
            overwrite=overwrite,
            skip_bad=skip_bad,
            seed=seed,
            check_burned_in=check_burned_in,
            dataset_name=dataset_name,
            progress=update,
        )
    _print({k: v for k, v in result.items() if k != "counts"})
    _warn(
        result["warnings"],
        (result["missing_files"], "listed but missing, prepared without them"),
        (result["skipped"], "unusable, skipped (--skip-bad)"),
        (result["bad_annotations"], "with a bad annotation, left out (--skip-bad)"),
    )


def _warn(warnings: list[str], *left_out: tuple[list[str], str]) -> None:
    """On stderr: one counted warning per kind of image a run left out (``(items, what)``, the first three
    named), then the adapter's and prepare's warnings."""
    for items, what in left_out:
        if items:
            named = "; ".join(items[:3]) + (f"; … {len(items) - 3} more" if len(items) > 3 else "")
            typer.echo(f"warning: {len(items)} image(s) {what}: {named}", err=True)
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)


@app.command()
def phantom(
    out: Annotated[Path, typer.Option(help="Output folder.")],
    n: Annotated[int, typer.Option(help="Number of phantoms.")] = 100,
    size: Annotated[int | None, typer.Option(help="Image size (px); default 256, or the translator's.")] = None,
    view: Annotated[str | None, typer.Option(help="CC or MLO (default: random).")] = None,
    laterality: Annotated[str | None, typer.Option(help="L or R (default: random).")] = None,
    density: Annotated[str | None, typer.Option(help="BI-RADS density A–D (default: random).")] = None,
    lesion: Annotated[str, typer.Option(help="none, benign-mass, malignant-mass, calcification.")] = "none",
    mode: Annotated[str, typer.Option(help="Outline sampling: empirical, uniform, median.")] = "empirical",
    seed: int = 0,
    colorset: Annotated[int, typer.Option(help="Publication colour set for RGB label maps: 1 or 2.")] = 1,
    params: Annotated[Path | None, typer.Option(help="Render one phantom from a parameter JSON.")] = None,
    translate: Annotated[
        Path | None,
        typer.Option(help="Render the label maps through a trained translation checkpoint (or run folder)."),
    ] = None,
    overwrite: bool = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N.")] = "auto",
) -> None:
    """Render phantom mammograms, label maps and a manifest with the parametric breast model."""
    with progress_bar("phantom") as update:
        result = api.phantom(
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
            params=params,
            translate=translate,
            overwrite=overwrite,
            device=device,
            progress=update,
        )
    _print({k: v for k, v in result.items() if k != "counts"})


@app.command()
def fit(
    image: Annotated[Path, typer.Argument(help="A mammogram (any supported format).")],
    frame_px: Annotated[
        str | None,
        typer.Option(
            help="ROWSxCOLUMNS: the publication's padded frame (the largest image of the set fitted with it); "
            "default the image."
        ),
    ] = None,
) -> None:
    """Fit the six outline parameters (a, b, phi, X0, Y0, Alpha_e) to the breast in an image, in the
    publication's convention, and the same outline in the phantom's frame."""
    _print(api.fit(image, frame_px=_pixels_pair(frame_px, "--frame-px")))


def _pixels_pair(text: str | None, flag: str) -> tuple[int, int] | None:
    """``"3297x2394"`` → (3297, 2394); one line naming ``flag`` otherwise."""
    if text is None:
        return None
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise InputError(flag, f"expected ROWSxCOLUMNS in pixels (e.g. 3297x2394), got {text!r}")
    return int(parts[0]), int(parts[1])


@datasets_app.command("inspect")
def inspect(
    path: Annotated[Path, typer.Argument(help="Dataset folder.")],
    format: str = "auto",
    mapping: Annotated[Path | None, typer.Option(help="Column mapping YAML for a CSV dataset.")] = None,
    salt: str | None = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    skip_bad: Annotated[bool, typer.Option(help="Leave out images with a bad annotation instead of stopping.")] = False,
) -> None:
    """Counts by view, laterality, density, label, finding and pathology: what the repository lacks."""
    result = api.inspect(path, format=format, mapping=mapping, salt=salt, skip_bad=skip_bad)
    if json_output:
        _print(result)
    else:
        _counts_table(result)
    _warn(
        result["dataset"]["warnings"],
        (result["dataset"]["missing_files"], "listed but missing, not counted above"),
        (result["dataset"]["bad_annotations"], "with a bad annotation, not counted above (--skip-bad)"),
    )


@app.command()
def pack(
    data: Annotated[Path, typer.Argument(help="A prepared dataset folder.")],
    size: Annotated[int | None, typer.Option(help="Training size in pixels (default: the prepared size).")] = None,
    labels: Annotated[
        bool, typer.Option(help="Also pack derived label maps (the translation family, a GAN with model.labels).")
    ] = False,
    workers: Annotated[int, typer.Option(help="Processes decoding images.")] = 0,
) -> None:
    """Pack a prepared dataset for streaming: train then reads it from disk with train.workers processes,
    RAM flat in the dataset's size."""
    with progress_bar("pack") as update:
        _print(api.pack(data, size=size, labels=labels, workers=workers, progress=update))


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="A prepared dataset folder (mammosynth prepare or phantom + prepare).")],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoints, losses.jsonl, tensorboard/, samples/.")],
    model: Annotated[
        str,
        typer.Option(
            help="Model family: ldm, gan, translation, upscale (super-resolution), lesion (painter) or verifier."
        ),
    ] = "ldm",
    config: Annotated[str, typer.Option(help="Preset (tiny, cpu-128, gpu-256, gpu-512) or a YAML file.")] = "tiny",
    set: Annotated[list[str] | None, typer.Option("--set", help="Override, e.g. train.steps=200 (repeatable).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the run folder's newest checkpoint.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Discard the run folder's previous run.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    time_budget: Annotated[
        str | None, typer.Option(help="Wall-clock budget over all resumes, e.g. 45m or 1.5h (train.steps is the cap).")
    ] = None,
    nproc: Annotated[
        int, typer.Option(help="Data-parallel processes on this machine (torchrun; train.batch_size is global).")
    ] = 1,
) -> None:
    """Train a generator, a super-resolution stage, the lesion painter or the lesion verifier (atomic checkpoints;
    --resume continues exactly). Under torchrun (or --nproc N) every process takes its share of the global batch."""
    if nproc > 1:  # the same command under torchrun, one process per share
        import subprocess

        argv = list(sys.argv[1:])
        at = next(i for i, a in enumerate(argv) if a == "--nproc" or a.startswith("--nproc="))
        del argv[at : at + (1 if "=" in argv[at] else 2)]
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
        raise typer.Exit(subprocess.call([*command, "-m", "mammosynth", *argv]))
    if nproc < 1:
        raise InputError("--nproc", f"must be at least 1, got {nproc}")
    with progress_bar(f"train {model}") as update:
        result = api.train(
            data,
            out,
            model=model,
            config=config,
            set=set,
            resume=resume,
            overwrite=overwrite,
            device=device,
            time_budget=time_budget,
            progress=update,
        )
    if int(os.environ.get("RANK", "0")) == 0:  # one summary, not one per process
        _print(result)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # a rank that finished leaves at once: at interpreter exit gloo's threads were seen to abort a rank
        # whose work was done and saved ("terminate called without an active exception", 1 run in 4 here)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


@app.command()
def generate(
    checkpoint: Annotated[Path, typer.Argument(help="A run folder or checkpoint folder of a trained model.")],
    out: Annotated[Path, typer.Option(help="Output dataset folder.")],
    n: Annotated[int | None, typer.Option(help="Number of images (or one per row of --conditions).")] = None,
    model: Annotated[str | None, typer.Option(help="ldm, gan or translation (checked against the checkpoint).")] = None,
    view: Annotated[str | None, typer.Option(help="CC or MLO (default: unknown).")] = None,
    laterality: Annotated[str | None, typer.Option(help="L or R.")] = None,
    density: Annotated[str | None, typer.Option(help="A–D.")] = None,
    birads: Annotated[str | None, typer.Option(help="Breast BI-RADS 0–6.")] = None,
    lesion: Annotated[str | None, typer.Option(help="none, benign-mass, malignant-mass, calcification, …")] = None,
    lesion_size_mm: Annotated[float | None, typer.Option(help="Lesion size (mm).")] = None,
    lesion_x: Annotated[float | None, typer.Option(help="Lesion centre x as a fraction of the width.")] = None,
    lesion_y: Annotated[float | None, typer.Option(help="Lesion centre y as a fraction of the height.")] = None,
    conditions: Annotated[Path | None, typer.Option(help="CSV of per-image conditions (+ count column).")] = None,
    mask: Annotated[Path | None, typer.Option(help="Lesion region mask (image size) for every image.")] = None,
    seed: int = 0,
    sampler: Annotated[str, typer.Option(help="ddim or ddpm.")] = "ddim",
    steps: Annotated[int, typer.Option(help="Sampling steps.")] = 50,
    guidance: Annotated[float, typer.Option(help="Classifier-free guidance scale (1 = none).")] = 3.0,
    guide: Annotated[list[str] | None, typer.Option(help="Guide only these fields (repeatable; default all).")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 8,
    layout: Annotated[str, typer.Option(help="none or phantom (a drawn label map per image).")] = "none",
    orientation: Annotated[str, typer.Option(help="standard (chest wall left) or native (R mirrored).")] = "standard",
    verify: Annotated[Path | None, typer.Option(help="Verifier checkpoint: reject and resample bad lesions.")] = None,
    max_attempts: Annotated[int, typer.Option(help="Samples per image at most with --verify.")] = 5,
    upscale: Annotated[
        list[Path] | None,
        typer.Option(
            help="Super-resolution or lesion-painter checkpoint, or an intensity map (.json from calibrate), to follow "
            "the generator with (repeatable: a cascade)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Generate a synthetic dataset (record schema, per-image provenance) from a trained model."""
    with progress_bar("generate") as update:
        result = api.generate(
            checkpoint,
            out,
            n=n,
            model=model,
            view=view,
            laterality=laterality,
            density=density,
            birads=birads,
            lesion=lesion,
            lesion_size_mm=lesion_size_mm,
            lesion_x=lesion_x,
            lesion_y=lesion_y,
            conditions=conditions,
            mask=mask,
            seed=seed,
            sampler=sampler,
            steps=steps,
            guidance=guidance,
            guide_fields=guide,
            batch_size=batch_size,
            layout=layout,
            orientation=orientation,
            verify=verify,
            max_attempts=max_attempts,
            upscale=upscale,
            overwrite=overwrite,
            device=device,
            progress=update,
        )
    result["model"].pop("trained_on", None)
    _print(result)


@app.command()
def inpaint(
    image: Annotated[Path, typer.Argument(help="A prepared image (the model's size).")],
    mask: Annotated[Path, typer.Option(help="Where to insert or remove the lesion (same size as the image).")],
    model: Annotated[Path, typer.Option(help="Latent diffusion run or checkpoint folder.")],
    out: Annotated[Path, typer.Option(help="Output PNG (a JSON sidecar is written beside it).")],
    lesion: Annotated[str | None, typer.Option(help="Lesion to insert: benign-mass, malignant-mass, …")] = None,
    remove: Annotated[bool, typer.Option(help="Remove the lesion under the mask instead.")] = False,
    view: Annotated[str | None, typer.Option(help="CC or MLO.")] = None,
    laterality: Annotated[str | None, typer.Option(help="L or R.")] = None,
    density: Annotated[str | None, typer.Option(help="A–D.")] = None,
    seed: int = 0,
    sampler: Annotated[str, typer.Option(help="ddim or ddpm.")] = "ddim",
    steps: Annotated[int, typer.Option(help="Sampling steps.")] = 50,
    guidance: Annotated[float, typer.Option(help="Classifier-free guidance scale.")] = 3.0,
    grow_px: Annotated[int | None, typer.Option(help="Grow the mask by N px (default 0; 2 with --remove).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Insert a lesion into a healthy image inside a mask, or remove one; the rest stays bit-identical."""
    _print(
        api.inpaint(
            image,
            mask,
            model,
            out,
            lesion=lesion,
            remove=remove,
            view=view,
            laterality=laterality,
            density=density,
            seed=seed,
            sampler=sampler,
            steps=steps,
            guidance=guidance,
            grow_px=grow_px,
            overwrite=overwrite,
            device=device,
        )
    )


@app.command()
def evaluate(
    real: Annotated[
        Path,
        typer.Argument(
            help="Real dataset (record schema, one image size); its --real-split "
            "images are compared, its train split is the training set."
        ),
    ],
    synthetic: Annotated[Path, typer.Argument(help="Synthetic dataset of the same image size.")],
    out: Annotated[Path, typer.Option(help="Output folder: evaluation.json, report.html, encoder.safetensors.")],
    train: Annotated[
        Path | None,
        typer.Option(
            help="The generator's training set, when it is not the train split "
            "of REAL (its --train-split images are used)."
        ),
    ] = None,
    real_split: Annotated[
        str,
        typer.Option(
            help="Which real images to compare: test, val, a comma list, or all (patients the generator never saw)."
        ),
    ] = "test",
    train_split: Annotated[
        str, typer.Option(help="Which images of the training set the generator trained on.")
    ] = "train",
    seed: int = 0,
    features: Annotated[
        str | None,
        typer.Option(
            help="Feature extractor instead of the self-trained encoder: an encoder.safetensors from an earlier "
            "evaluation, or ARCH:WEIGHTS.safetensors with ARCH resnet18/34/50/101/152."
        ),
    ] = None,
    verifier: Annotated[
        Path | None, typer.Option(help="Lesion-verifier checkpoint: check lesion kind and position.")
    ] = None,
    utility: Annotated[bool, typer.Option(help="Train the real / real+synthetic / synthetic classifiers.")] = True,
    frd: Annotated[bool, typer.Option(help="Add the Fréchet Radiomics Distance (optional radiomics extra).")] = False,
    encoder_steps: Annotated[int, typer.Option(help="Training steps of the feature encoder.")] = 300,
    c2st_steps: Annotated[int, typer.Option(help="Training steps of the two-sample classifier.")] = 300,
    c2st_px: Annotated[
        int,
        typer.Option(
            help="Working size of the two-sample classifier (at most the image size; fine texture needs 128 or more)."
        ),
    ] = 128,
    utility_steps: Annotated[int, typer.Option(help="Training steps of each utility classifier.")] = 400,
    conditional_steps: Annotated[int, typer.Option(help="Training steps of each condition classifier.")] = 300,
    overwrite: bool = False,
    device: Annotated[
        str, typer.Option(help="Where the two-sample classifiers train: auto, cpu, cuda or cuda:N.")
    ] = "auto",
) -> None:
    """Measure how real, diverse, correct, private and useful a synthetic dataset is, against real patients
    the generator never saw (the test split by default); writes numbers with their n and split
    (evaluation.json) and a self-contained HTML report."""
    with progress_bar("evaluate") as update:
        result = api.evaluate(
            real,
            synthetic,
            out,
            train=train,
            real_split=real_split,
            train_split=train_split,
            seed=seed,
            features=features,
            verifier=verifier,
            run_utility=utility,
            frd=frd,
            encoder_steps=encoder_steps,
            c2st_steps=c2st_steps,
            c2st_px=c2st_px,
            utility_steps=utility_steps,
            conditional_steps=conditional_steps,
            overwrite=overwrite,
            progress=update,
            device=device,
        )
    arms = result.get("utility", {}).get("arms", {})
    realism, features = result["realism_c2st"], result["fidelity"]["features"]
    _print(
        {
            "report": str(Path(out) / "report.html"),
            "real_split": result["inputs"]["real_split"],
            "real_images": result["inputs"]["real_images"],
            "synthetic_images": result["inputs"]["synthetic_images"],
            "c2st_auc": realism["auc"],
            "c2st_auc_ci95": realism["auc_ci95"],
            "c2st_mix_matched": realism.get("mix", {}).get("matched"),
            "lesion_c2st_auc": result["realism_lesions"].get("auc"),
            "kernel_distance": features["kernel_distance"],
            "kernel_distance_std": features["kernel_distance_std"],
            "frechet_distance": features["frechet_distance"],
            "coverage": result["diversity"]["coverage"],
            "copies": result.get("memorisation", {}).get("copies"),
            "utility_auc": {arm: found.get("auc") for arm, found in arms.items()} or None,
        }
    )


@app.command()
def expand(
    dataset: Annotated[Path, typer.Argument(help="The dataset to expand (prepared at the model's size).")],
    model: Annotated[Path, typer.Option(help="Checkpoint or run folder of a trained generator.")],
    out: Annotated[Path, typer.Option(help="Output folder (rerun the same command to resume).")],
    target: Annotated[str, typer.Option(help="balanced, N-per-class (200-per-class) or a YAML spec.")] = "balanced",
    by: Annotated[
        list[str] | None,
        typer.Option(help="Balance over these fields: view, laterality, density, lesion (repeatable; default lesion)."),
    ] = None,
    format: Annotated[
        list[str] | None, typer.Option(help="Extra outputs: dicom, vindr (repeatable; PNG + manifests always).")
    ] = None,
    verify: Annotated[
        Path | None, typer.Option(help="Lesion-verifier checkpoint: reject and regenerate bad lesions.")
    ] = None,
    copy_filter: Annotated[bool, typer.Option(help="Regenerate images too close to a real one.")] = True,
    include_real: Annotated[bool, typer.Option(help="Copy the real images into the output.")] = True,
    seed: int = 0,
    sampler: Annotated[str, typer.Option(help="ddim or ddpm (diffusion models).")] = "ddim",
    steps: Annotated[int, typer.Option(help="Sampling steps (diffusion models).")] = 50,
    guidance: Annotated[float, typer.Option(help="Classifier-free guidance scale (diffusion models).")] = 3.0,
    layout: Annotated[str, typer.Option(help="none or phantom (a drawn label map per image).")] = "none",
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 8,
    max_attempts: Annotated[int, typer.Option(help="Samples per image at most before giving up on it.")] = 5,
    upscale: Annotated[
        list[Path] | None,
        typer.Option(
            help="Super-resolution or lesion-painter checkpoint, or an intensity map (.json from calibrate), to follow "
            "the generator with (repeatable: a cascade)."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the plan and stop.")] = False,
    evaluate: Annotated[
        bool, typer.Option(help="Evaluate the synthetic images against the dataset (report in OUT/evaluation).")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace a different expansion in --out.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    ray: Annotated[
        str | None,
        typer.Option(help="Make the batches as Ray tasks: 'local' (a local cluster) or a cluster's address."),
    ] = None,
    ray_workers: Annotated[int | None, typer.Option(help="CPUs of the local Ray cluster (default: all).")] = None,
) -> None:
    """Expand a dataset with balanced synthetic images: plan, generate, check, write (resumable)."""
    plan = api.expand(
        dataset, out, model, target=target, by=by, seed=seed, dry_run=True, overwrite=dry_run and overwrite
    )
    _plan_table(plan["plan"])
    if dry_run:
        return
    with progress_bar("expand") as update:
        result = api.expand(
            dataset,
            out,
            model,
            target=target,
            by=by,
            seed=seed,
            formats=["png", *(format or [])],
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
            evaluate=evaluate,
            overwrite=overwrite,
            device=device,
            ray=ray,
            ray_workers=ray_workers,
            progress=update,
        )
    _print(
        {
            k: result[k]
            for k in (
                "out",
                "real_images",
                "synthetic_images",
                "rejected",
                "made_this_run",
                "images_per_second",
                "counts_after",
            )
        }
    )


@app.command()
def calibrate(
    model: Annotated[Path, typer.Argument(help="Checkpoint or run folder of a trained generator.")],
    dataset: Annotated[Path, typer.Argument(help="Its prepared training dataset (at the generator's output size).")],
    out: Annotated[Path, typer.Option(help="The intensity map to write (.json; pass it back as --upscale).")],
    upscale: Annotated[
        list[Path] | None,
        typer.Option(help="The refining stages the map follows, as generate will run them (repeatable)."),
    ] = None,
    split: Annotated[str, typer.Option(help="The generator's training split (never a held-out one).")] = "train",
    seed: int = 0,
    steps: Annotated[int, typer.Option(help="Sampling steps (diffusion models).")] = 30,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 16,
    spectrum: Annotated[
        bool, typer.Option(help="Also tilt the breast's power spectrum to the training images' median β.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Fit an intensity map that gives the generator's images its training images' breast intensities."""
    with progress_bar("calibrate") as update:
        result = api.calibrate(
            model,
            dataset,
            out,
            upscale=upscale,
            split=split,
            seed=seed,
            steps=steps,
            batch_size=batch_size,
            spectrum=spectrum,
            overwrite=overwrite,
            device=device,
            progress=update,
        )
    _print(result)


def _plan_table(plan: dict) -> None:
    table = Table(
        title=f"plan: {plan['target']} by {', '.join(plan['by'])} → {plan['synthetic_images']} synthetic",
        title_justify="left",
    )
    for name in plan["by"]:
        table.add_column(name)
    for name in ("real", "add", "after"):
        table.add_column(name, justify="right")
    for cell in plan["cells"]:
        table.add_row(*cell["cell"].values(), str(cell["real"]), str(cell["add"]), str(cell["real"] + cell["add"]))
    Console().print(table)
    if plan["ignored_unknown"]:
        Console().print(
            f"{plan['ignored_unknown']} images with an unknown {'/'.join(plan['by'])} are kept but not counted"
        )


@app.command()
def regenerate(
    folder: Annotated[Path, typer.Argument(help="A generated or expanded dataset folder.")],
    row: Annotated[str, typer.Argument(help="Image id (e.g. syn0000012) or manifest row number.")],
    model: Annotated[Path | None, typer.Option(help="The checkpoint (default: the one the expansion used).")] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the remade image here (PNG).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    upscale: Annotated[
        list[Path] | None, typer.Option(help="Super-resolution stages the set was made with (default: recorded).")
    ] = None,
) -> None:
    """Remake one synthetic image from its provenance and check it is bit-identical."""
    result = api.regenerate(folder, row, checkpoint=model, out=out, device=device, upscale=upscale)
    _print(result)
    if not result["identical"]:
        raise typer.Exit(1)


study_app = typer.Typer(help="Blinded reader studies (real vs synthetic).", no_args_is_help=True)
app.add_typer(study_app, name="study")


@study_app.command("create")
def study_create(
    real: Annotated[Path, typer.Argument(help="Real dataset.")],
    synthetic: Annotated[Path, typer.Argument(help="Synthetic dataset.")],
    folder: Annotated[Path, typer.Option(help="The app's data folder (as for serve).")] = Path("mammosynth-app"),
    name: Annotated[str, typer.Option(help="Study name shown to readers.")] = "study",
    reader: Annotated[list[str] | None, typer.Option(help="Reader name (repeatable).")] = None,
    per_class: Annotated[int, typer.Option(help="Images drawn from each set.")] = 20,
    size: Annotated[int, typer.Option(help="Served image size (px).")] = 256,
    seed: int = 0,
    base_url: Annotated[str, typer.Option(help="Where serve runs, for the printed links.")] = "http://127.0.0.1:8765",
) -> None:
    """Create a blinded, balanced study and print the reader links and the admin link (shown once)."""
    made = api.create_study(
        real, synthetic, folder, name=name, readers=reader, per_class=per_class, size=size, seed=seed
    )
    _print(
        {
            "study": made["study"],
            "images": made["images"],
            "admin": f"{base_url}/study/{made['study']}?admin={made['admin_token']}",
            "readers": {r: f"{base_url}/read?token={t}" for r, t in made["reader_tokens"].items()},
        }
    )


@app.command()
def serve(
    folder: Annotated[Path, typer.Option(help="The app's data folder (studies, answers).")] = Path("mammosynth-app"),
    host: Annotated[str, typer.Option(help="Interface to bind (default: this machine only).")] = "127.0.0.1",
    port: int = 8765,
    model: Annotated[
        Path | None, typer.Option(help="Translation checkpoint: realistic previews in the designer.")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Start the local web app: the breast designer at /, reader studies at /read and /study/ID."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]warning:[/yellow] serving on {host}: anyone who can reach it sees the designer; "
            "study data still needs tokens"
        )
    console.print(f"mammosynth app on http://{host}:{port}/  (Ctrl-C stops it)")
    api.serve(folder, host=host, port=port, translator=model, device=device)


FILE_SYSTEM_ERRORS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.ENAMETOOLONG,
}


def main() -> None:
    try:
        app(standalone_mode=False)
    except InputError as exc:
        # escaped: a message holding "[app]" or "[0]" is text, not rich markup
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as exc:  # the file system refused (disk full, read-only, no permission): one line, not a traceback
        if exc.errno not in FILE_SYSTEM_ERRORS:
            raise
        where = output_name(str(exc.filename)) if exc.filename is not None else "output"
        console.print(f"[red]error:[/red] {escape(f'{where}: {exc.strerror}')}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        console.print("aborted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # usage errors of the CLI library carry their own message and exit code
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
