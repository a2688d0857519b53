"""Evaluation of synthetic mammograms: plain functions on arrays, one idea per module, and
:func:`~mammosynth.evaluate.suite.evaluate_sets`, which runs them all on two datasets and writes
``evaluation.json`` and the self-contained ``report.html``."""

from __future__ import annotations

from mammosynth.evaluate.c2st import two_sample_test
from mammosynth.evaluate.classifier import auc_score, auc_with_interval, fit_classifier, group_split, predict
from mammosynth.evaluate.conditional import conditional_agreement, field_agreement, verifier_agreement
from mammosynth.evaluate.coverage import mode_collapse, precision_recall_density_coverage
from mammosynth.evaluate.distances import frechet_distance, kernel_distance
from mammosynth.evaluate.extractors import load_extractor, save_encoder
from mammosynth.evaluate.features import FeatureExtractor, ImageEncoder, train_encoder
from mammosynth.evaluate.memorisation import feature_copies, memorisation, nearest_neighbours
from mammosynth.evaluate.moments import (
    MOMENTS,
    compare_columns,
    compare_moments,
    histogram_distance,
    intensity_moments,
    training_reference,
)
from mammosynth.evaluate.paired import paired_metrics
from mammosynth.evaluate.reidentify import reidentification
from mammosynth.evaluate.shape import compare_shapes, outline_parameters
from mammosynth.evaluate.utility import utility
from mammosynth.preprocess.spectrum import spectrum_exponent

__all__ = [
    "MOMENTS",
    "FeatureExtractor",
    "ImageEncoder",
    "auc_score",
    "auc_with_interval",
    "compare_columns",
    "compare_moments",
    "compare_shapes",
    "conditional_agreement",
    "feature_copies",
    "field_agreement",
    "fit_classifier",
    "frechet_distance",
    "group_split",
    "histogram_distance",
    "intensity_moments",
    "kernel_distance",
    "load_extractor",
    "memorisation",
    "mode_collapse",
    "nearest_neighbours",
    "outline_parameters",
    "paired_metrics",
    "precision_recall_density_coverage",
    "predict",
    "reidentification",
    "save_encoder",
    "spectrum_exponent",
    "train_encoder",
    "training_reference",
    "two_sample_test",
    "utility",
    "verifier_agreement",
]
