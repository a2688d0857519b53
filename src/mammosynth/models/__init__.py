"""Generator and checker networks, one module per family; configs serialise to JSON. Which family is
which lives in :mod:`mammosynth.families` (declared once)."""

from __future__ import annotations

from mammosynth.families import family
from mammosynth.models.base import Config
from mammosynth.models.gan import ConditionalGAN, GANConfig
from mammosynth.models.ldm import LatentDiffusion, LDMConfig
from mammosynth.models.translation import LabelTranslator, TranslationConfig
from mammosynth.models.upscale import UpscaleConfig, Upscaler
from mammosynth.models.verifier import LesionVerifier, VerifierConfig


def model_config_class(name: str) -> type[Config]:
    return family(name).config_class()


def build_model(name: str, config: Config):
    """The family's network from its config."""
    return family(name).model_class()(config)


__all__ = [
    "ConditionalGAN",
    "GANConfig",
    "LDMConfig",
    "LabelTranslator",
    "LatentDiffusion",
    "LesionVerifier",
    "TranslationConfig",
    "UpscaleConfig",
    "Upscaler",
    "VerifierConfig",
    "build_model",
    "model_config_class",
]
