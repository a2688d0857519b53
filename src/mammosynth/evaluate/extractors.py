"""Pluggable feature extractors for FID/KID and precision/recall, from a weights file the user gives
(safetensors only — never a pickle). Nothing is downloaded.

- A mammosynth evaluation encoder (written by every ``evaluate`` run as ``encoder.safetensors``): reuse it
  to make distances of two evaluations comparable.
- ``resnet18`` / ``resnet34`` / ``resnet50`` / ``resnet101`` / ``resnet152``: MONAI's 2-D ResNet, whose
  parameter names are torchvision's, so ImageNet or RadImageNet ResNet weights converted to safetensors
  load as they are (the ``fc`` head is dropped; features are the pooled last block, at 224² by default,
  ImageNet normalisation, grayscale repeated to 3 channels).

Inception-v3 and DINO ViTs are not built in: their architectures are outside the kept libraries (no
torchvision here); compute their features elsewhere if a paper needs exactly those numbers."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from mammosynth.errors import InputError
from mammosynth.evaluate.features import FeatureExtractor, ImageEncoder
from mammosynth.io.atomic import atomic_write

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def save_encoder(extractor: FeatureExtractor, path: str | Path) -> Path:
    """Write an evaluation encoder (an :class:`ImageEncoder` extractor) as safetensors with its settings."""
    if not isinstance(extractor.network, ImageEncoder):
        raise InputError(path, "only the evaluation's own encoder is saved this way")
    network = extractor.network
    metadata = {
        "mammosynth": "evaluation-encoder",
        "work_px": str(extractor.work_px),
        "width": str(network.width),
        "dim": str(network.dim),
    }
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        handle.write(save({k: v.contiguous() for k, v in network.state_dict().items()}, metadata=metadata))
    return path


def load_extractor(spec: str | Path, work_px: int | None = None) -> FeatureExtractor:
    """A :class:`FeatureExtractor` from ``PATH`` (a saved evaluation encoder) or ``ARCH:PATH`` (ARCH one of
    :data:`RESNETS`), at ``work_px`` (default: the encoder's own, 224 for ResNets).

    Example:
        >>> import tempfile, numpy as np
        >>> from mammosynth.evaluate.features import train_encoder
        >>> path = save_encoder(train_encoder(np.random.rand(8, 32, 32), work_px=32, steps=1),
        ...                     Path(tempfile.mkdtemp()) / "encoder.safetensors")
        >>> load_extractor(path)(np.random.rand(3, 32, 32)).shape
        (3, 64)
    """
    text = str(spec)
    architecture, _, location = text.partition(":") if text.split(":", 1)[0] in RESNETS else ("", "", text)
    path = Path(location)
    if not path.is_file():
        raise InputError(path, "feature-extractor weights not found")
    try:
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(path, f"not a safetensors weights file ({exc})") from None
    if not architecture:
        if metadata.get("mammosynth") != "evaluation-encoder":
            raise InputError(
                path,
                f"say which network these weights are for: ARCH:{path} with ARCH one of "
                f"{', '.join(RESNETS)}, or give an encoder.safetensors written by `evaluate`",
            )
        network = ImageEncoder(width=int(metadata["width"]), dim=int(metadata["dim"]))
        _load(network, state, path)
        return FeatureExtractor(network, work_px or int(metadata["work_px"]), name=f"saved encoder {path.name}")
    from monai.networks import nets

    network = getattr(nets, architecture)(
        spatial_dims=2, n_input_channels=3, feed_forward=False, conv1_t_stride=2, bias_downsample=False
    )  # torchvision's layout
    _load(network, {k: v for k, v in state.items() if not k.startswith("fc.")}, path)
    return FeatureExtractor(
        network,
        work_px or 224,
        name=f"{architecture} from {path.name}",
        channels=3,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )


def _load(network: torch.nn.Module, state: dict, path: Path) -> None:
    expected = network.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        problem = f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
        raise InputError(
            path,
            f"weights do not fit the network: {problem} ({len(missing)} missing, {len(unexpected)} unexpected tensors)",
        )
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise InputError(
                path, f"tensor {key!r} is {tuple(tensor.shape)}, the network needs {tuple(expected[key].shape)}"
            )
    network.load_state_dict(state)
