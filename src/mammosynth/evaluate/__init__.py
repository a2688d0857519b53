"""Evaluation of synthetic mammograms: plain functions on arrays, one idea per module (issue 5, in progress:
moments, paired metrics and memorisation so far)."""

from __future__ import annotations

from mammosynth.evaluate.memorisation import memorisation, nearest_neighbours
from mammosynth.evaluate.moments import MOMENTS, compare_moments, histogram_distance, intensity_moments
from mammosynth.evaluate.paired import paired_metrics

__all__ = ["MOMENTS", "compare_moments", "histogram_distance", "intensity_moments", "memorisation",
           "nearest_neighbours", "paired_metrics"]
