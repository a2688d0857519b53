"""Command line: a thin typer skin over :mod:`mammosynth.api` (same verbs, same arguments)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
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
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


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
    n: Annotated[int, typer.Option(help="Phantom images to render.")] = 24,
    size: Annotated[int, typer.Option(help="Prepared image size (px).")] = 256,
    seed: int = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
) -> None:
    """Main job on the embedded default: phantom data → prepare → contact sheet and summary."""
    with progress_bar("demo") as update:
        result = api.demo(out=out, n=n, size=size, seed=seed, overwrite=overwrite, progress=update)
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
    skip_bad: Annotated[bool, typer.Option(help="Skip unreadable images instead of stopping.")] = False,
    seed: int = 0,
) -> None:
    """Segment, orient (chest wall left), crop, normalise, resize and split a dataset."""
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
            progress=update,
        )
    _print({k: v for k, v in result.items() if k != "counts"})


@app.command()
def phantom(
    out: Annotated[Path, typer.Option(help="Output folder.")],
    n: Annotated[int, typer.Option(help="Number of phantoms.")] = 100,
    size: Annotated[int, typer.Option(help="Image size (px).")] = 256,
    view: Annotated[str | None, typer.Option(help="CC or MLO (default: random).")] = None,
    laterality: Annotated[str | None, typer.Option(help="L or R (default: random).")] = None,
    density: Annotated[str | None, typer.Option(help="BI-RADS density A–D (default: random).")] = None,
    lesion: Annotated[str, typer.Option(help="none, benign-mass, malignant-mass, calcification.")] = "none",
    mode: Annotated[str, typer.Option(help="Outline sampling: empirical, uniform, median.")] = "empirical",
    seed: int = 0,
    colorset: Annotated[int, typer.Option(help="Publication colour set for RGB label maps: 1 or 2.")] = 1,
    params: Annotated[Path | None, typer.Option(help="Render one phantom from a parameter JSON.")] = None,
    overwrite: bool = False,
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
            overwrite=overwrite,
            progress=update,
        )
    _print({k: v for k, v in result.items() if k != "counts"})


@app.command()
def fit(image: Annotated[Path, typer.Argument(help="A mammogram (any supported format).")]) -> None:
    """Fit the six outline parameters (a, b, phi, X0, Y0, Alpha_e) to the breast in an image."""
    _print(api.fit(image))


@datasets_app.command("inspect")
def inspect(
    path: Annotated[Path, typer.Argument(help="Dataset folder.")],
    format: str = "auto",
    mapping: Annotated[Path | None, typer.Option(help="Column mapping YAML for a CSV dataset.")] = None,
    salt: str | None = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Counts by view, laterality, density, label, finding and pathology: what the repository lacks."""
    result = api.inspect(path, format=format, mapping=mapping, salt=salt)
    if json_output:
        _print(result)
    else:
        _counts_table(result)


def main() -> None:
    try:
        app(standalone_mode=False)
    except InputError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
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
