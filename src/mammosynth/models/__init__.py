"""Generator and checker networks, one module per family; configs serialise to JSON."""

from __future__ import annotations

from mammosynth.errors import InputError
from mammosynth.models.base import Config
from mammosynth.models.gan import ConditionalGAN, GANConfig
from mammosynth.models.ldm import LatentDiffusion, LDMConfig
from mammosynth.models.translation import LabelTranslator, TranslationConfig
from mammosynth.models.verifier import LesionVerifier, VerifierConfig

FAMILIES: dict[str, tuple[type[Config], type]] = {
    "ldm": (LDMConfig, LatentDiffusion),
    "gan": (GANConfig, ConditionalGAN),
    "translation": (TranslationConfig, LabelTranslator),
    "verifier": (VerifierConfig, LesionVerifier),
}


def model_config_class(family: str) -> type[Config]:
    if family not in FAMILIES:
        raise InputError(None, f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[family][0]


def build_model(family: str, config: Config):
    """The family's network from its config."""
    return FAMILIES[family][1](config)


__all__ = [
    "FAMILIES",
    "ConditionalGAN",
    "GANConfig",
    "LDMConfig",
    "LabelTranslator",
    "LatentDiffusion",
    "LesionVerifier",
    "TranslationConfig",
    "VerifierConfig",
    "build_model",
    "model_config_class",
]
