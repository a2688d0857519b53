"""Preprocessing: breast segmentation, orientation, pectoral mask, crop/resize, normalisation, splits."""

from mammosynth.preprocess.geometry import FrameTransform, rasterise
from mammosynth.preprocess.pectoral import pectoral_mask
from mammosynth.preprocess.pipeline import prepare_dataset, prepare_image
from mammosynth.preprocess.segment import breast_mask, chest_wall_side
from mammosynth.preprocess.splits import assign_splits

__all__ = [
    "FrameTransform",
    "assign_splits",
    "breast_mask",
    "chest_wall_side",
    "pectoral_mask",
    "prepare_dataset",
    "prepare_image",
    "rasterise",
]
