"""Training: one loop (:mod:`.loop`) shared by every family; a family contributes a :class:`Task`."""

from __future__ import annotations

from mammosynth.families import family
from mammosynth.training.checkpoint import Checkpoint, find_checkpoint, load_module, open_checkpoint
from mammosynth.training.config import PRESETS, TrainConfig, load_config
from mammosynth.training.loop import Phase, StepContext, Task, Trainer


def task_class(name: str) -> type[Task]:
    """The training task of a family (from :mod:`mammosynth.families`)."""
    return family(name).task_class()


__all__ = [
    "PRESETS",
    "Checkpoint",
    "Phase",
    "StepContext",
    "Task",
    "TrainConfig",
    "Trainer",
    "find_checkpoint",
    "load_config",
    "load_module",
    "open_checkpoint",
    "task_class",
]
