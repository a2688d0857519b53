"""Training: one loop (:mod:`.loop`) shared by every family; a family contributes a :class:`Task`."""

from __future__ import annotations

from mammosynth.errors import InputError
from mammosynth.training.checkpoint import Checkpoint, find_checkpoint, load_module, open_checkpoint
from mammosynth.training.config import PRESETS, TrainConfig, load_config
from mammosynth.training.gan import GANTask
from mammosynth.training.ldm import LDMTask
from mammosynth.training.loop import Phase, StepContext, Task, Trainer
from mammosynth.training.translation import TranslationTask
from mammosynth.training.verifier import VerifierTask

TASKS: dict[str, type[Task]] = {
    "ldm": LDMTask,
    "gan": GANTask,
    "translation": TranslationTask,
    "verifier": VerifierTask,
}


def task_class(family: str) -> type[Task]:
    if family not in TASKS:
        raise InputError(None, f"unknown model family {family!r}; known: {', '.join(TASKS)}")
    return TASKS[family]


__all__ = [
    "PRESETS",
    "TASKS",
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
