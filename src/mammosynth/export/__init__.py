"""The end of the path: expand a dataset with planned synthetic images and write it out (record-schema
manifest as JSONL / CSV / parquet, DICOM, the VinDr-Mammo layout, a dataset card), and remake any
synthetic image from its provenance."""

from __future__ import annotations

from mammosynth.export.card import render_card, write_card
from mammosynth.export.expand import FORMATS, expand_dataset
from mammosynth.export.formats import write_dicom_set, write_tables, write_vindr
from mammosynth.export.plan import PLAN_FIELDS, Plan, plan_expansion
from mammosynth.export.regenerate import regenerate

__all__ = [
    "FORMATS",
    "PLAN_FIELDS",
    "Plan",
    "expand_dataset",
    "plan_expansion",
    "regenerate",
    "render_card",
    "write_card",
    "write_dicom_set",
    "write_tables",
    "write_vindr",
]
