"""Generation: pipelines over trained models, conditioning specs, the lesion check, dataset writing."""

from mammosynth.generate.conditions import condition_rows
from mammosynth.generate.dataset import attempt_seed, generate_dataset
from mammosynth.generate.pipeline import DiffusionPipeline
from mammosynth.generate.verify import LesionChecker

__all__ = ["DiffusionPipeline", "LesionChecker", "attempt_seed", "condition_rows", "generate_dataset"]
