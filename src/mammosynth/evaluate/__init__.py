"""Evaluation of synthetic mammograms: plain functions on arrays, one idea per module (issue 5, in
progress: the metrics exist; the ``evaluate`` command, utility arm, conditional checks and HTML report do
not yet)."""

from __future__ import annotations

from mammosynth.evaluate.c2st import auc_score, two_sample_test
from mammosynth.evaluate.coverage import precision_recall_density_coverage
from mammosynth.evaluate.distances import frechet_distance, kernel_distance
from mammosynth.evaluate.features import FeatureExtractor, ImageEncoder, train_encoder
from mammosynth.evaluate.memorisation import memorisation, nearest_neighbours
from mammosynth.evaluate.moments import MOMENTS, compare_moments, histogram_distance, intensity_moments
from mammosynth.evaluate.paired import paired_metrics
from mammosynth.evaluate.spectrum import spectrum_exponent

__all__ = [
    "MOMENTS",
    "FeatureExtractor",
    "ImageEncoder",
    "auc_score",
    "compare_moments",
    "frechet_distance",
    "histogram_distance",
    "intensity_moments",
    "kernel_distance",
    "memorisation",
    "nearest_neighbours",
    "paired_metrics",
    "precision_recall_density_coverage",
    "spectrum_exponent",
    "train_encoder",
    "two_sample_test",
]
