"""Make one synthetic image again from its provenance and compare it with the stored file bit for bit.

The provenance holds the model hash, sampler, steps, guidance, base seed, attempt, the indices that
shared its batch and what each asked for; the image is remade in that same batch (batched arithmetic can
differ in the last bit from a batch of one) and checked against the 16-bit PNG that was written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mammosynth.datasets import load_dataset
from mammosynth.errors import InputError
from mammosynth.generate.dataset import Draw, make_batch
from mammosynth.generate.pipeline import load_pipeline
from mammosynth.io.images import read_image, to_uint, write_png
from mammosynth.models.conditioning import validate_conditions


def _find(records: list, row: str, where: Path):
    for record in records:
        if record.image_id == row:
            return record
    if row.isdigit() and 0 <= int(row) < len(records):
        return records[int(row)]
    raise InputError(where, f"no image {row!r} here (give an image id or a manifest row number)")


def regenerate(
    folder: str | Path,
    row: str,
    checkpoint: str | Path | None = None,
    out: str | Path | None = None,
    device: str = "auto",
    upscale: str | Path | list[str | Path] | None = None,
) -> dict:
    """Remake image ``row`` (image id or manifest row number) of a generated or expanded dataset; returns
    whether it is identical to the stored image. ``checkpoint`` and ``upscale`` (refining stages)
    default to the ones the expansion recorded; ``out`` also writes the remade image as a PNG."""
    folder = Path(folder)
    records = load_dataset(folder).records
    record = _find(records, str(row), folder)
    provenance = record.extra.get("provenance") if isinstance(record.extra, dict) else None
    if not provenance or provenance.get("seed") is None:
        raise InputError(folder / "manifest.jsonl", f"{record.image_id} has no generator provenance (a real image?)")
    plan = json.loads((folder / "plan.json").read_text()) if (folder / "plan.json").is_file() else None
    if checkpoint is None:
        checkpoint = (plan or {}).get("checkpoint")
        upscale = upscale or (plan or {}).get("settings", {}).get("upscale")
    if checkpoint is None:
        raise InputError(folder, "say which checkpoint made this set (--model CHECKPOINT, and --upscale STAGE)")
    pipeline = load_pipeline(str(checkpoint), device, upscale=upscale)
    if pipeline.model_id != provenance["model_id"]:
        raise InputError(
            checkpoint, f"this checkpoint is model {pipeline.model_id}, the image was made by {provenance['model_id']}"
        )
    by_index = {
        r.extra["provenance"]["index"]: r.extra["provenance"]
        for r in records
        if isinstance(r.extra, dict) and "index" in r.extra.get("provenance", {})
    }
    index = provenance["index"]
    batch = provenance.get("batch") or [index]

    def requested(i: int) -> dict | None:
        if plan is not None and i < len(plan["images"]):
            return validate_conditions(plan["images"][i])
        found = by_index.get(i)
        return None if found is None else found.get("requested", found["conditions"])

    if any(requested(i) is None for i in batch):
        batch = [index]  # a batch-mate was rejected and left no trace: remake alone (may differ in the last bit)
    rows = {i: {"conditions": requested(i), "guidance": provenance.get("guidance")} for i in batch}
    made = make_batch(
        pipeline,
        rows,
        batch,
        dict.fromkeys(batch, provenance.get("attempt", 0)),
        Draw(
            provenance["base_seed"],
            sampler=provenance.get("sampler") or "ddim",
            steps=provenance.get("steps") or 1,
            guidance=provenance.get("guidance") or 0.0,
            guide_fields=provenance.get("guide_fields"),
            layout=provenance.get("layout", "none"),
        ),
    )
    image = made["images"][batch.index(index)]
    if provenance.get("mirrored"):
        image = image[:, ::-1]
    stored = read_image(folder / record.path).pixels
    remade, original = to_uint(image, 16).astype(np.int64), to_uint(stored, 16).astype(np.int64)
    if out is not None:
        write_png(out, image, bits=16)
    return {
        "image_id": record.image_id,
        "identical": bool(np.array_equal(remade, original)),
        "max_abs_difference_16bit": int(np.abs(remade - original).max()),
        "seed": made["seeds"][batch.index(index)],
        "batch": batch,
        "model_id": pipeline.model_id,
    }
