"""The one registry of model families: each family is declared here once, with where its parts live.

Every layer asks this registry: ``models`` for the config and network, ``training`` for the task,
``generate`` for the pipeline, the CLI and the web app for names and capabilities. Parts are named as
``"module:attribute"`` strings and imported on first use, so this module imports nothing of the layers it
describes (the image's path keeps its one direction). Adding a family: its model file, its task, its
pipeline class, its configs under ``configs/<name>/``, its tests, and one :class:`Family` line below.

Example:
    >>> family("gan").generates, family("verifier").generates
    (True, False)
    >>> generator_names()
    ('ldm', 'gan', 'translation')
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from mammosynth.errors import InputError


@dataclass(frozen=True)
class Family:
    """A model family: its parts (``"module:attribute"``) and what it can do."""

    name: str
    summary: str
    config: str
    model: str
    task: str
    pipeline: str | None = None  # None: the family does not generate images (the lesion verifier)
    # the family's defaults; a pipeline may widen them from its config (a GAN built with ``model.spatial``)
    needs_layout: bool = False  # generates from a drawn layout only (``generate`` then draws phantom layouts)
    follows_layout: bool = False  # can follow a drawn layout (label map or spatial channels)
    refiner: str | None = None  # an image → image stage applied after any generator (``--upscale``)

    @property
    def generates(self) -> bool:
        return self.pipeline is not None

    @property
    def refines(self) -> bool:
        return self.refiner is not None

    def config_class(self) -> type:
        return _load(self.config)

    def model_class(self) -> type:
        return _load(self.model)

    def task_class(self) -> type:
        return _load(self.task)

    def pipeline_class(self) -> type:
        if self.pipeline is None:
            raise InputError(None, f"a {self.name!r} model does not generate images; generators: {_names()}")
        return _load(self.pipeline)

    def refiner_class(self) -> type:
        if self.refiner is None:
            raise InputError(
                None, f"a {self.name!r} model does not refine images; refiners: {', '.join(refiner_names())}"
            )
        return _load(self.refiner)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "ldm",
            "latent diffusion: autoencoder + conditional UNet; attributes, lesion masks, inpainting",
            "mammosynth.models.ldm:LDMConfig",
            "mammosynth.models.ldm:LatentDiffusion",
            "mammosynth.training.ldm:LDMTask",
            "mammosynth.generate.pipeline:DiffusionPipeline",
            follows_layout=True,
        ),
        Family(
            "gan",
            "conditional GAN with per-pixel noise; attributes only, one forward pass per image",
            "mammosynth.models.gan:GANConfig",
            "mammosynth.models.gan:ConditionalGAN",
            "mammosynth.training.gan:GANTask",
            "mammosynth.generate.pipeline:GANPipeline",
        ),
        Family(
            "translation",
            "label map → mammogram (pix2pix-style), the parametric model's route",
            "mammosynth.models.translation:TranslationConfig",
            "mammosynth.models.translation:LabelTranslator",
            "mammosynth.training.translation:TranslationTask",
            "mammosynth.generate.pipeline:TranslationPipeline",
            needs_layout=True,
            follows_layout=True,
        ),
        Family(
            "upscale",
            "super-resolution: adds high-resolution texture to any generator's images (a cascade's last stage)",
            "mammosynth.models.upscale:UpscaleConfig",
            "mammosynth.models.upscale:Upscaler",
            "mammosynth.training.upscale:UpscaleTask",
            refiner="mammosynth.generate.pipeline:UpscaleStage",
        ),
        Family(
            "lesion",
            "lesion painter: paints a requested lesion at the requested place into any generator's images",
            "mammosynth.models.lesion:LesionConfig",
            "mammosynth.models.lesion:LesionPainter",
            "mammosynth.training.lesion:LesionTask",
            refiner="mammosynth.generate.pipeline:LesionStage",
        ),
        Family(
            "verifier",
            "lesion verifier: finds a requested lesion's kind and place (checks generators, not one)",
            "mammosynth.models.verifier:VerifierConfig",
            "mammosynth.models.verifier:LesionVerifier",
            "mammosynth.training.verifier:VerifierTask",
        ),
    )
}


def _load(reference: str):
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _names(generators_only: bool = True) -> str:
    return ", ".join(generator_names() if generators_only else FAMILIES)


def family(name: str) -> Family:
    """The family called ``name`` (one line naming the known ones otherwise)."""
    if name not in FAMILIES:
        raise InputError(None, f"unknown model family {name!r}; known: {_names(False)}")
    return FAMILIES[name]


def generator_names() -> tuple[str, ...]:
    """Families that generate images, in registry order."""
    return tuple(name for name, f in FAMILIES.items() if f.generates)


def refiner_names() -> tuple[str, ...]:
    """Families that refine another family's images, in registry order."""
    return tuple(name for name, f in FAMILIES.items() if f.refines)
