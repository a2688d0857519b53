"""Evaluation of synthetic mammograms: plain functions on arrays, one idea per module (issue 5, in progress:
moments, paired metrics, memorisation and C2ST so far)."""

from __future__ import annotations

from mammosynth.evaluate.c2st import auc_score, two_sample_test
from mammosynth.evaluate.memorisation import memorisation, nearest_neighbours
from mammosynth.evaluate.moments import MOMENTS, compare_moments, histogram_distance, intensity_moments
from mammosynth.evaluate.paired import paired_metrics

__all__ = ["MOMENTS", "auc_score", "compare_moments", "histogram_distance", "intensity_moments", "memorisation",
           "nearest_neighbours", "paired_metrics", "two_sample_test"]
