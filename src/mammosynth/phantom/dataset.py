"""Write a phantom dataset: images, label maps, parameters and a manifest in the record schema.

Image ``i`` uses seed ``image_seed(seed, i)``, a function of its index alone, so a dataset made by one
process or sharded over many workers is the same, image for image. Left breasts are written with the
chest wall at the left edge and right breasts mirrored, as real mammograms are displayed, so phantom
data goes through ``prepare`` exactly like real data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from mammosynth import __version__
from mammosynth.datasets.schema import Finding, Record, write_manifest
from mammosynth.io.atomic import atomic_output_dir, atomic_write
from mammosynth.io.images import write_png
from mammosynth.phantom.labelmap import (
    BENIGN_MASS,
    CALCIFICATION,
    MALIGNANT_MASS,
    draw_label_map,
    prepared_label_map,
    to_colour,
)
from mammosynth.phantom.params import PhantomParams
from mammosynth.phantom.render import render_phantom
from mammosynth.phantom.sampling import sample_params


def image_seed(seed: int, index: int) -> int:
    """Seed of image ``index`` of a dataset made with ``seed`` (independent of worker count)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint32)[0])


def phantom_findings(
    params: PhantomParams, labels: np.ndarray, image_id: str, out: Path, mirror: bool
) -> list[Finding]:
    """One finding per mass/calcification cluster, with its mask file and bounding box."""
    findings = []
    lesions = [
        (
            m.kind,
            "mass",
            MALIGNANT_MASS if m.kind == "malignant" else BENIGN_MASS,
            {"shape": m.shape, "size_mm": m.size_mm},
        )
        for m in params.masses
    ]
    lesions += [(c.kind, "calcification", CALCIFICATION, {"count": c.count}) for c in params.calcifications]
    for k, (kind, category, label, attributes) in enumerate(lesions):
        mask = labels == label
        if mirror:
            mask = mask[:, ::-1]
        if not mask.any():
            continue
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        rel = f"masks/{image_id}_finding{k}.png"
        write_png(out / rel, mask.astype(np.uint8) * 255, bits=8)
        findings.append(
            Finding(
                category=category,
                pathology=kind,
                geometry="box",
                coords=[float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)],
                mask_path=rel,
                attributes=attributes,
            )
        )
    return findings


#: Renders a label map (prepared frame) into an image of the same size; the int is the phantom's seed.
Translate = Callable[[np.ndarray, int], np.ndarray]


def write_phantom(
    params: PhantomParams,
    out: Path,
    image_id: str,
    size: int,
    colorset: int = 1,
    translate: Translate | None = None,
    translator: dict | None = None,
) -> Record:
    """Render one phantom into ``out``; returns its record.

    With ``translate`` (a trained label map → mammogram model) the label map is drawn in the prepared frame
    (chest wall left, breast cropped and scaled to the square, as the model was trained) and the image is
    the model's rendering of it instead of the analytic one; ``translator`` describes the model.
    """
    spacing_mm = params.field_mm / size
    if translate is None:
        labels = draw_label_map(params, size)
        image = render_phantom(params, labels)
    else:
        labels, spacing_mm = prepared_label_map(params, size)
        image = translate(labels, params.seed)
    mirror = params.laterality == "R"
    flip = (lambda a: a[:, ::-1]) if mirror else (lambda a: a)
    write_png(out / f"images/{image_id}.png", flip(image), bits=16)
    write_png(out / f"labels/{image_id}.png", flip(labels), bits=8)
    with atomic_write(out / f"labels_rgb/{image_id}.png") as handle:
        Image.fromarray(np.ascontiguousarray(flip(to_colour(labels, colorset)))).save(handle, format="PNG")
    with atomic_write(out / f"params/{image_id}.json", "w") as handle:
        handle.write(params.to_json())
    return Record(
        image_id=image_id,
        path=f"images/{image_id}.png",
        dataset="phantom",
        patient_key=f"phantom-{image_id}",
        view=params.view,
        laterality=params.laterality,
        density=params.density,
        findings=phantom_findings(params, labels, image_id, out, mirror),
        spacing_mm=spacing_mm,
        width=size,
        height=size,
        extra={
            "phantom": {
                "params": f"params/{image_id}.json",
                "labels": f"labels/{image_id}.png",
                "seed": params.seed,
                "generator": f"mammosynth-phantom {__version__}",
                **({"translated_by": translator} if translate is not None else {}),
            }
        },
    )


def make_phantom_dataset(
    out: str | Path,
    n: int = 100,
    size: int = 256,
    view: str | None = None,
    laterality: str | None = None,
    density: str | None = None,
    lesion: str = "none",
    mode: str = "empirical",
    seed: int = 0,
    colorset: int = 1,
    overwrite: bool = False,
    start: int = 0,
    progress: Callable[[int, int], None] | None = None,
    translate: Translate | None = None,
    translator: dict | None = None,
) -> Path:
    """Render images ``start … start + n − 1`` of the phantom dataset defined by ``seed`` into ``out``
    (through a trained translator with ``translate``, see :func:`write_phantom`)."""
    with atomic_output_dir(out, overwrite=overwrite) as tmp:
        records = []
        for done, index in enumerate(range(start, start + n), 1):
            params = sample_params(
                image_seed(seed, index), view=view, laterality=laterality, density=density, lesion=lesion, mode=mode
            )
            records.append(write_phantom(params, tmp, f"phantom{index:06d}", size, colorset, translate, translator))
            if progress:
                progress(done, n)
        write_manifest(tmp, records)
        with atomic_write(tmp / "phantom.json", "w") as handle:
            json.dump(
                {
                    "mammosynth": __version__,
                    "n": n,
                    "start": start,
                    "size": size,
                    "seed": seed,
                    "view": view,
                    "laterality": laterality,
                    "density": density,
                    "lesion": lesion,
                    "mode": mode,
                    "translated_by": translator,
                },
                handle,
                indent=2,
            )
    return Path(out)
