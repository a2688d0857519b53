"""Dataset adapters (mini-MIAS, VinDr-Mammo, CBIS-DDSM, generic folder/CSV) → one record schema."""

from mammosynth.datasets.base import Dataset
from mammosynth.datasets.inspect import count_dataset
from mammosynth.datasets.registry import FORMATS, load_dataset
from mammosynth.datasets.schema import Finding, Record, iter_manifest, write_manifest

__all__ = [
    "FORMATS",
    "Dataset",
    "Finding",
    "Record",
    "count_dataset",
    "iter_manifest",
    "load_dataset",
    "write_manifest",
]
