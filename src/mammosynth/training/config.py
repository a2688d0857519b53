"""Run configs: a YAML/JSON file with a ``model`` section (the family's architecture) and a ``train``
section (this module's :class:`TrainConfig`). Shipped presets live in ``mammosynth/configs/<family>/``.

Example:
    >>> cfg = load_config("ldm", "tiny")
    >>> cfg["train"].batch_size > 0
    True
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from pathlib import Path

import yaml

from mammosynth import validate as check
from mammosynth.errors import InputError
from mammosynth.models.base import Config

PRESETS = ("tiny", "cpu-128", "gpu-256", "gpu-512")


@dataclasses.dataclass
class TrainConfig(Config):
    """Optimisation and bookkeeping shared by every family."""

    steps: int = 1000  # with time_budget_s, the most steps the run may take
    time_budget_s: float = 0.0  # wall-clock budget over all resumes (0 = none): the run ends when it is spent
    first_stage_share: float = 0.3  # with a budget: a two-stage family's first stage gets at most this share
    batch_size: int = 8
    accumulate: int = 1
    lr: float = 2e-4
    lr_discriminator: float = 2e-4
    betas: tuple[float, ...] = (0.9, 0.999)
    weight_decay: float = 0.01
    warmup_steps: int = 100
    # the last share of the run decays every learning rate linearly to zero (0 = constant): of train.steps, or
    # under a time budget of the budget (the decay's steps planned from the speed so far, saved for a resume)
    lr_decay_share: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    precision: str = "auto"
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 10
    sample_every: int = 500
    seed: int = 0
    cond_drop_field: float = 0.1
    cond_drop_all: float = 0.1
    # family-specific stage lengths and loss weights (ignored by families that do not use them)
    ae_steps: int = 500
    kl_weight: float = 1e-6
    ssim_weight: float = 0.2
    adv_weight: float = 0.01
    adv_start: int = 200
    ae_crop: int = 0  # autoencoder stage on random square crops of this size (0 = whole images)
    r1_gamma: float = 1.0  # GAN: R1 penalty weight on real images (lazy: every r1_every steps)
    r1_every: int = 16
    diff_augment: bool = True
    # GAN: DiffAugment's brightness/contrast strength; 0 (translation and cutout only) holds the generator to the
    # real images' contrast (prepare normalises it), 1 is DiffAugment's colour policy
    augment_colour: float = 0.0
    l1_weight: float = 100.0  # translation: L1 to the real image
    feature_weight: float = 10.0  # translation: discriminator feature matching
    # lesion painter: a trained patch verifier (checkpoint path) that judges each fill in training, and the weight
    # of its cross-entropy toward the requested kind (an auxiliary classifier, as in AC-GAN; 0 = none)
    guide: str = ""
    guide_weight: float = 0.0
    pixel_weight: float = 0.0  # upscale: L1 to the real crop at full resolution (weak: what the input predicts)
    spectrum_weight: float = 0.0  # upscale: L1 between output's and real crop's ring-averaged log power spectra
    prefetch: bool = True  # with workers 0: the next step's batch is read on a thread while this one trains
    workers: int = 0  # DataLoader worker processes reading batches (from a pack: flat RAM, any dataset size)
    channels_last: bool = False  # every family in NHWC memory order (faster with bf16 on GPUs; the GAN always is)
    compile: bool = False  # torch.compile the generators (GPU; minutes to start, worth it on long runs)
    fused_adamw: bool = True  # the fused AdamW kernel where the device has one (CUDA)

    def check(self, where: str) -> TrainConfig:
        """Every value within its bounds (:data:`TRAIN_BOUNDS`); one line naming the first that is not."""
        for name, (lo, hi, lo_open) in TRAIN_BOUNDS.items():
            check.number(getattr(self, name), where, f"train.{name}", lo=lo, hi=hi, lo_open=lo_open)
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise InputError(where, f"train.betas must be two numbers in [0, 1), got {list(self.betas)}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise InputError(where, f"train.precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        if not 0 < self.first_stage_share < 1:
            raise InputError(where, f"train.first_stage_share must be between 0 and 1, got {self.first_stage_share}")
        if not 0 <= self.augment_colour <= 1:
            raise InputError(where, f"train.augment_colour must be between 0 and 1, got {self.augment_colour}")
        if not 0 <= self.time_budget_s < float("inf"):
            raise InputError(where, f"train.time_budget_s must be a finite number ≥ 0, got {self.time_budget_s}")
        if self.checkpoint_every < 1 or self.log_every < 1:
            raise InputError(where, "train.checkpoint_every and train.log_every must be ≥ 1")
        return self


#: (low, high, low end open) of the train section's numbers; sizes and counts are whole numbers ≥ 1.
TRAIN_BOUNDS = {
    "steps": (1, 10**9, False),
    "batch_size": (1, 65_536, False),
    "accumulate": (1, 4096, False),
    "lr": (0.0, 10.0, False),  # 0 is allowed: a frozen run (tests compare gradients with it)
    "lr_discriminator": (0.0, 10.0, False),
    "weight_decay": (0.0, 10.0, False),
    "warmup_steps": (0, 10**9, False),
    "lr_decay_share": (0.0, 0.99, False),
    "guide_weight": (0.0, 1e6, False),
    "grad_clip": (0.0, 1e6, False),
    "ema_decay": (0.0, 0.999999, False),
    "checkpoint_every": (1, 10**9, False),
    "keep_checkpoints": (1, 10**6, False),
    "log_every": (1, 10**9, False),
    "sample_every": (1, 10**9, False),
    "seed": (0, 2**63 - 1, False),
    "cond_drop_field": (0.0, 1.0, False),
    "cond_drop_all": (0.0, 1.0, False),
    "r1_gamma": (0.0, 1e6, False),
    "r1_every": (1, 10**6, False),
    "workers": (0, 256, False),
}


def parse_duration(text: str, flag: str = "--time-budget") -> float:
    """Seconds in ``90s``, ``45m``, ``1.5h`` or a bare number of seconds.

    >>> parse_duration("1.5h"), parse_duration("45m"), parse_duration("90")
    (5400.0, 2700.0, 90.0)
    """
    units = {"s": 1, "m": 60, "h": 3600}
    value = str(text).strip().lower()
    scale = units.get(value[-1:], 1)
    try:
        seconds = float(value[:-1] if value[-1:] in units else value) * scale
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise InputError(flag, f"expected a positive duration like 90s, 45m or 1.5h, got {text!r}")
    return seconds


def config_path(family: str, name: str | Path) -> Path:
    """A preset name (``tiny`` …) or a path to a YAML/JSON file."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml", ".json") or path.exists():
        if not path.is_file():
            raise InputError(path, "config file not found")
        return path
    folder = resources.files("mammosynth") / "configs" / family
    preset = folder / f"{name}.yaml"
    if not preset.is_file():
        known = (
            sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))
            if folder.is_dir()
            else []
        )
        raise InputError(name, f"no such config; presets for {family}: {', '.join(known)} (or a YAML path)")
    return Path(str(preset))


def load_config(family: str, name: str | Path = "tiny", overrides: list[str] | None = None) -> dict:
    """Read a config: returns ``{"model": <family config>, "train": TrainConfig, "source": path}``.

    ``overrides`` are ``section.key=value`` strings (value parsed as YAML), e.g. ``train.steps=20``.
    """
    from mammosynth.models import model_config_class

    path = config_path(family, name)
    try:
        text = path.read_text()
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
        raise InputError(path, f"unreadable config ({exc.__class__.__name__}: {str(exc).splitlines()[0]})") from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise InputError(path, "config must be a mapping with model: and train: sections")
    unknown = sorted(set(raw) - {"model", "train"})
    if unknown:
        raise InputError(path, f"unknown key {unknown[0]!r}; known: model, train")
    for section in ("model", "train"):
        if raw.get(section) is not None and not isinstance(raw[section], dict):
            raise InputError(path, f"{section}: must be a mapping of settings, got {type(raw[section]).__name__}")
    for item in overrides or []:
        key, sep, value = item.partition("=")
        section, dot, name_ = key.partition(".")
        if not sep or not dot or section not in ("model", "train"):
            raise InputError(item, "override must look like train.steps=100 or model.image_size=64")
        try:
            raw.setdefault(section, {})[name_] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise InputError(item, "the value is not readable (YAML)") from None
    model = model_config_class(family).from_dict(raw.get("model"), str(path), "model.").check(str(path))
    train = TrainConfig.from_dict(raw.get("train"), str(path), "train.").check(str(path))
    return {"model": model, "train": train, "source": str(path)}
