"""The parametric 2D breast model (Banterle et al. 2025, extended to MLO): parameters, label maps,
rendered phantom mammograms, sampling from real-data statistics, and outline fitting."""

from mammosynth.phantom.dataset import image_seed, make_phantom_dataset, write_phantom
from mammosynth.phantom.fit import fit_outline, outline_iou
from mammosynth.phantom.labelmap import COLORSETS, LABELS, draw_label_map, to_colour
from mammosynth.phantom.params import CalcCluster, Mass, Outline, PhantomParams
from mammosynth.phantom.render import power_law_noise, render_phantom
from mammosynth.phantom.sampling import sample_outline, sample_params

__all__ = [
    "COLORSETS",
    "LABELS",
    "CalcCluster",
    "Mass",
    "Outline",
    "PhantomParams",
    "draw_label_map",
    "fit_outline",
    "image_seed",
    "make_phantom_dataset",
    "outline_iou",
    "power_law_noise",
    "render_phantom",
    "sample_outline",
    "sample_params",
    "to_colour",
    "write_phantom",
]
