"""Pipelines: load a generator's checkpoint and sample images for per-image conditions and seeds (one
``sample`` signature for every family); the latent diffusion one also inpaints (insert or remove a lesion)
inside a mask while leaving every other pixel untouched. A :class:`Cascade` follows any generator with
refining stages: super-resolution (:class:`UpscaleStage`) and the lesion painter (:class:`LesionStage`), which
paints each requested lesion at its requested place."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi

from mammosynth.errors import InputError
from mammosynth.families import family as family_of
from mammosynth.families import generator_names
from mammosynth.models.conditioning import encode_conditions, spatial_from_masks
from mammosynth.models.lesion import condition, disc_masks
from mammosynth.models.sampling import SAMPLERS, denoise
from mammosynth.models.translation import check_label_map, one_hot_labels
from mammosynth.models.verifier import KINDS, crop_patches, kind_of
from mammosynth.preprocess.segment import breast_mask
from mammosynth.training.checkpoint import load_module, open_checkpoint
from mammosynth.training.device import pick_device


@dataclass(frozen=True)
class SampleOptions:
    """The options of :meth:`Pipeline.sample` as one value (what a family's ``_sample`` receives)."""

    sampler: str = "ddim"
    steps: int = 50
    guidance: float | list[float] = 3.0
    guide_fields: list[str] | None = None
    spatial: np.ndarray | None = None
    labels: np.ndarray | None = None
    progress: Callable[[int, int], None] | None = None


class Trained:
    """A trained network ready to use: open the checkpoint of its family, build the network from the saved
    config (both named in :mod:`mammosynth.families`), load its (EMA) weights onto the device and describe
    itself for provenance."""

    family = ""

    def __init__(self, checkpoint: str, device: str = "auto") -> None:
        spec = family_of(self.family)
        self.checkpoint = open_checkpoint(checkpoint, family=self.family)
        self.config = spec.config_class().from_dict(self.checkpoint.state["model"], str(self.checkpoint.folder))
        self.device = pick_device(device)
        self.model = spec.model_class()(self.config)
        self.weights = load_module(self.checkpoint, self.family, self.model)
        self.model.eval().to(self.device)
        self.model_id = self.checkpoint.hash()
        self.size = self.config.image_size
        self.spacing_mm = (self.checkpoint.state.get("data") or {}).get("spacing_mm")

    def describe(self) -> dict:
        return {
            "family": self.family,
            "model_id": self.model_id,
            "checkpoint_step": self.checkpoint.step,
            "weights": self.weights,
            "image_size": self.size,
            "trained_on": self.checkpoint.state.get("data"),
        }


class Pipeline(Trained):
    """A trained generator ready to sample; what every family's pipeline shares, with one ``sample``
    signature::

        sample(conditions, seeds, *, sampler, steps, guidance, guide_fields, spatial, labels, progress)

    ``conditions`` and ``seeds`` have one entry per image and an image depends on its seed alone, not on its
    batch-mates. A family ignores the options it has no use for (a GAN has no sampler, steps or guidance and
    does not follow spatial maps) and refuses what it cannot do without (a translator needs ``labels``).
    """

    uses_sampler = False
    uses_conditions = True  # the requests' conditions reach the model (a translator renders its label map alone)

    def __init__(self, checkpoint: str, device: str = "auto") -> None:
        super().__init__(checkpoint, device)
        spec = family_of(self.family)
        self.uses_labels = spec.needs_layout
        # generates from a drawn layout only (``generate`` then draws phantom layouts unless told otherwise)
        self.needs_layout = spec.needs_layout
        self.follows_layout = spec.follows_layout  # follows a drawn layout (label map or spatial channels)

    def sample(
        self,
        conditions: list[dict],
        seeds: list[int],
        *,
        sampler: str = "ddim",
        steps: int = 50,
        guidance: float | list[float] = 3.0,
        guide_fields: list[str] | None = None,
        spatial: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Images (N, H, W) in [0, 1] for validated ``conditions`` and ``seeds`` (one each)."""
        n = len(seeds)
        if len(conditions) != n or n == 0:
            raise InputError(None, f"one seed per image: {len(conditions)} conditions but {n} seeds")
        for name, array in (("spatial", spatial), ("labels", labels)):
            if array is not None and (len(array) != n or tuple(np.shape(array)[-2:]) != (self.size, self.size)):
                raise InputError(None, f"{name} must hold {n} maps of {self.size}×{self.size}, got {np.shape(array)}")
        options = SampleOptions(sampler, steps, guidance, guide_fields, spatial, labels, progress)
        return self._sample(conditions, seeds, options)

    def _sample(self, conditions: list[dict], seeds: list[int], options: SampleOptions) -> np.ndarray:
        raise NotImplementedError

    def locate(self, conditions: list[dict], seeds: list[int]) -> list[dict]:
        """The requests as the images will fulfil them: a stage that places lesions (a cascade's lesion painter)
        fills in the place of a lesion request that has none, so a dataset can record it before sampling; other
        pipelines return them unchanged."""
        return conditions


class DiffusionPipeline(Pipeline):
    """A trained latent diffusion model ready to sample.

    Every image's randomness comes from a generator seeded with that image's seed alone, so an image
    does not depend on the other images in its batch or on how many workers made the set.
    """

    family = "ldm"
    uses_sampler = True

    def _noise(self, seeds: list[int]) -> tuple[torch.Tensor, list[torch.Generator]]:
        shape = (self.config.latent_channels, self.config.latent_size, self.config.latent_size)
        generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
        return torch.stack([torch.randn(shape, generator=g) for g in generators]).to(self.device), generators

    def _check(self, sampler: str, steps: int) -> None:
        if sampler not in SAMPLERS:
            raise InputError(None, f"unknown sampler {sampler!r}; known: {', '.join(SAMPLERS)}")
        if not 1 <= steps <= self.config.train_timesteps:
            raise InputError(None, f"steps must be between 1 and {self.config.train_timesteps}")

    def _sample(self, conditions: list[dict], seeds: list[int], options: SampleOptions) -> np.ndarray:
        """Follows ``options.spatial`` (N, 3, H, W) breast / pectoral / lesion maps; ``labels`` are not used
        (the spatial channels carry the layout)."""
        sampler, steps, spatial = options.sampler, options.steps, options.spatial
        self._check(sampler, steps)
        noise, generators = self._noise(seeds)
        encoded = {k: v.to(self.device) for k, v in encode_conditions(conditions).items()}
        if spatial is not None:
            encoded["spatial"] = torch.from_numpy(np.asarray(spatial, dtype=np.float32)).to(self.device)
        latents = denoise(
            self.model,
            noise,
            encoded,
            sampler,
            steps,
            torch.as_tensor(options.guidance, dtype=torch.float32),
            options.guide_fields,
            generators,
            progress=options.progress,
        )
        with torch.no_grad():
            return self.model.decode(latents)[:, 0].float().cpu().numpy()

    def inpaint(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        conditions: dict,
        seed: int,
        remove: bool = False,
        sampler: str = "ddim",
        steps: int = 50,
        guidance: float = 3.0,
        grow_px: int = 0,
        feather_px: float = 3.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Insert a lesion (``conditions`` say which) or remove one inside ``mask``.

        The mask is grown by ``grow_px``; pixels outside the grown mask are returned bit-identical; inside
        it the generated content is blended in over ``feather_px`` pixels from the edge. Returns the image
        and the region that was allowed to change.
        """
        self._check(sampler, steps)
        size = self.size
        if image.shape != (size, size):
            raise InputError(None, f"image is {image.shape[1]}×{image.shape[0]}; this model inpaints {size}×{size}")
        if mask.shape != image.shape:
            raise InputError(None, f"mask is {mask.shape[1]}×{mask.shape[0]} but the image is {size}×{size}")
        if grow_px < 0:  # scipy dilates to convergence (the whole image) for iterations < 1
            raise InputError("grow_px", f"must be at least 0, got {grow_px}")
        region = ndi.binary_dilation(mask, iterations=grow_px) if grow_px else mask.astype(bool)
        if not region.any():
            raise InputError(None, "mask is empty")
        breast = breast_mask(image)
        spatial = spatial_from_masks(breast, None, None if remove else mask, image.shape)[None]
        if breast is None:
            spatial[:] = 0
        encoded = {k: v.to(self.device) for k, v in encode_conditions([conditions]).items()}
        encoded["spatial"] = torch.from_numpy(spatial).to(self.device)
        pixels = torch.from_numpy(image.astype(np.float32))[None, None].to(self.device)
        with torch.no_grad():
            known = self.model.encode(pixels)
        latent_region = torch.nn.functional.adaptive_max_pool2d(
            torch.from_numpy(region.astype(np.float32))[None, None], self.config.latent_size
        )
        latent_region = torch.nn.functional.max_pool2d(latent_region, 3, stride=1, padding=1).to(self.device)
        noise, generators = self._noise([seed])
        known_noise = torch.randn(noise.shape[1:], generator=generators[0])[None].to(self.device)
        latents = denoise(
            self.model,
            noise,
            encoded,
            sampler,
            steps,
            guidance,
            None,
            generators,
            known=known,
            known_mask=latent_region,
            known_noise=known_noise,
        )
        with torch.no_grad():
            generated = self.model.decode(latents)[0, 0].float().cpu().numpy()
        weight = np.clip(ndi.distance_transform_edt(region) / max(feather_px, 1e-6), 0, 1) if feather_px else region
        out = np.where(region, weight * generated + (1 - weight) * image, image)
        return out.astype(image.dtype), region


class GANPipeline(Pipeline):
    """A trained conditional GAN (its EMA generator) ready to sample; one latent vector per seed."""

    family = "gan"

    def __init__(self, checkpoint: str, device: str = "auto") -> None:
        super().__init__(checkpoint, device)
        self.needs_layout = self.follows_layout = bool(self.config.spatial)
        self.uses_labels = bool(self.config.labels)  # its layout is the label map (``model.labels``)

    @torch.no_grad()
    def _sample(self, conditions: list[dict], seeds: list[int], options: SampleOptions) -> np.ndarray:
        """One forward pass; sampler, steps and guidance do not apply to a GAN; spatial maps (or with
        ``model.labels`` label maps) are followed by a GAN built with ``model.spatial`` (and required by it),
        ignored by one without."""
        generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        z = torch.stack([torch.randn(self.config.z_dim, generator=g) for g in generators]).to(self.device)
        noise = None
        if self.config.noise:  # drawn after z from the same per-image generator: one seed, one image
            noise = torch.stack([torch.randn(1, self.size, self.size, generator=g) for g in generators])
            noise = noise.to(self.device)
        encoded = encode_conditions(conditions)
        categorical, continuous = encoded["categorical"].to(self.device), encoded["continuous"].to(self.device)
        spatial = None  # a GAN built with model.spatial refuses to sample without maps (models/gan.py)
        if self.config.labels and options.labels is not None:
            labels = check_label_map(np.asarray(options.labels), self.size, None)
            spatial = one_hot_labels(torch.from_numpy(labels)).to(self.device)
        elif self.config.spatial and not self.config.labels and options.spatial is not None:
            spatial = torch.from_numpy(np.asarray(options.spatial, dtype=np.float32)).to(self.device)
        images = self.model.generator(z, categorical, continuous, noise, spatial)
        if options.progress:
            options.progress(1, 1)
        return images[:, 0].float().clamp(0, 1).cpu().numpy()


class TranslationPipeline(Pipeline):
    """A trained label map → mammogram translator (its EMA generator): one noise image per seed."""

    family = "translation"
    uses_conditions = False

    @torch.no_grad()
    def translate(self, labels: np.ndarray, seeds: list[int], where: object = None) -> np.ndarray:
        """Images (N, H, W) in [0, 1] for label maps (N, H, W) of the parametric model's classes (0–8)."""
        labels = check_label_map(labels, self.size, where)
        labels = labels[None] if labels.ndim == 2 else labels
        if len(seeds) != len(labels):
            raise InputError(where, f"{len(labels)} label maps but {len(seeds)} seeds")
        shape = (self.config.noise_channels, self.size, self.size)
        noise = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds])
        one_hot = one_hot_labels(torch.from_numpy(labels)).to(self.device)
        return self.model.generator(one_hot, noise.to(self.device))[:, 0].float().clamp(0, 1).cpu().numpy()

    def _sample(self, conditions: list[dict], seeds: list[int], options: SampleOptions) -> np.ndarray:
        """Images for label maps drawn by the caller (``generate`` draws them with the parametric model); the
        label map carries the layout and the attributes, so the other options do not apply."""
        if options.labels is None:
            raise InputError(None, "a translation model generates from label maps; use --layout phantom")
        images = self.translate(options.labels, seeds)
        if options.progress:
            options.progress(1, 1)
        return images


class RefiningStage:
    """A stage that runs after a generator in a :class:`Cascade`: :meth:`refine` takes the images made so far
    (N, ``input_size``, ``input_size``), their seeds and their requests and returns (N, ``size``, ``size``);
    :meth:`locate` fills in what the stage decides before sampling (a lesion's place); :meth:`describe` and
    ``model_id`` name it in provenance. Trained stages are :class:`TrainedStage`; the intensity map is not."""

    input_size: int
    size: int
    model_id: str

    @property
    def where(self) -> Path:
        """What this stage was loaded from (named in its error lines)."""
        raise NotImplementedError

    def describe(self) -> dict:
        raise NotImplementedError

    def locate(self, conditions: list[dict], seeds: list[int]) -> list[dict]:
        """The requests as this stage will fulfil them (one seed each, as :meth:`Pipeline.locate`); a stage that
        decides nothing returns them unchanged."""
        return conditions

    def refine(self, images: np.ndarray, seeds: Sequence[int], conditions: Sequence[dict] | None = None) -> np.ndarray:
        raise NotImplementedError


class TrainedStage(Trained, RefiningStage):
    """A refining stage with a checkpoint: its network built and loaded as every trained network is."""

    @property
    def where(self) -> Path:
        return self.checkpoint.folder


class UpscaleStage(TrainedStage):
    """A trained super-resolution stage (its EMA generator): images (N, h, h) → (N, h·f, h·f), one noise
    image per seed, drawn from a stream of that seed that no generator uses."""

    family = "upscale"

    def __init__(self, checkpoint: str, device: str = "auto") -> None:
        super().__init__(checkpoint, device)
        self.input_size = self.config.input_size

    @torch.no_grad()
    def refine(self, images: np.ndarray, seeds: Sequence[int], conditions: Sequence[dict] | None = None) -> np.ndarray:
        """Images enlarged ``factor`` × with texture from each seed's noise; ``conditions`` are not used."""
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 3 or images.shape[1:] != (self.input_size, self.input_size) or len(images) != len(seeds):
            raise InputError(
                self.checkpoint.folder,
                f"this stage enlarges {len(seeds)} images of {self.input_size}×{self.input_size}, got {images.shape}",
            )
        shape = (1, self.size, self.size)
        noise = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(stage_seed(s))) for s in seeds])
        low = torch.from_numpy(images)[:, None].to(self.device)
        return self.model.generator(low, noise.to(self.device))[:, 0].float().clamp(0, 1).cpu().numpy()


class CalibrationStage(RefiningStage):
    """An intensity map (:mod:`mammosynth.generate.calibration`) as the last stage of a cascade: no network,
    no noise; images keep their size and get the training images' intensity distribution."""

    family = "calibration"

    def __init__(self, path: str | Path, device: str = "auto") -> None:
        from mammosynth.generate.calibration import IntensityMap

        self.path = Path(path)
        self.mapping = IntensityMap.load(self.path)
        self.input_size = self.size = self.mapping.image_size
        self.device = pick_device(device)
        self.model_id = hashlib.sha256(json.dumps(self.mapping.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    @property
    def where(self) -> Path:
        return self.path

    def describe(self) -> dict:
        tilt = {"spectral_tilt": self.mapping.spectral_tilt} if self.mapping.spectral_tilt else {}
        return {
            "family": self.family,
            "model_id": self.model_id,
            "image_size": self.size,
            **tilt,
            **self.mapping.fitted_on,
        }

    def refine(self, images: np.ndarray, seeds: Sequence[int], conditions: Sequence[dict] | None = None) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 3 or images.shape[1:] != (self.size, self.size):
            raise InputError(self.path, f"this map calibrates {self.size}×{self.size} images, got {images.shape}")
        return self.mapping.apply(images)


def stage_seed(seed: int, salt: int = 0x5AFE) -> int:
    """The seed of an image's super-resolution (or, with another ``salt``, lesion) noise: a function of the
    image's seed alone, apart from the stream its generator draws from."""
    return int(np.random.SeedSequence([int(seed), salt]).generate_state(1, dtype=np.uint32)[0])


LESION_SALT = 0x1E51  # the stream of an image's seed that places and paints its lesion
PLACE_X, PLACE_Y = (0.2, 0.55), (0.35, 0.7)  # where a lesion without a requested place goes (fractions)


class LesionStage(TrainedStage):
    """A trained lesion painter (its EMA generator): paints each image's requested lesion (``category`` other
    than none) at ``lesion_x``, ``lesion_y`` with diameter ``lesion_size_mm``, and leaves images without a
    lesion request bit-identical. A request without a place gets one drawn from its seed (:meth:`locate`); one
    without a size the painter's ``radius_px``. Every pixel farther than the radius plus ``grow_px`` from the centre is
    left as it was."""

    family = "lesion"

    def __init__(self, checkpoint: str, device: str = "auto") -> None:
        super().__init__(checkpoint, device)
        self.input_size = self.size

    def locate(self, conditions: list[dict], seeds: list[int]) -> list[dict]:
        """Each request with its place filled in (:meth:`located`)."""
        return [self.located(c, s) for c, s in zip(conditions, seeds, strict=True)]

    def located(self, conditions: dict, seed: int) -> dict:
        """One request with its place filled in: a lesion request without ``lesion_x``/``lesion_y`` gets a place
        drawn from its seed in the part of the prepared frame (chest wall left) that holds breast tissue in
        nearly every prepared film (``PLACE_X``, ``PLACE_Y``), so the place is known before the image is made and
        the record can name it. Other requests are returned as they are."""
        if conditions.get("category", "none") == "none" or ("lesion_x" in conditions and "lesion_y" in conditions):
            return conditions
        rng = np.random.default_rng(stage_seed(seed, LESION_SALT))
        x, y = rng.uniform(*PLACE_X), rng.uniform(*PLACE_Y)
        return {**conditions, "lesion_x": round(float(x), 4), "lesion_y": round(float(y), 4)}

    def place(self, conditions: dict, seed: int) -> tuple[float, float, float] | None:
        """(x, y, radius) in pixels of the disc the painter fills for one request, or None for no lesion."""
        if conditions.get("category", "none") == "none":
            return None
        conditions, config = self.located(conditions, seed), self.config
        x, y = conditions["lesion_x"] * self.size, conditions["lesion_y"] * self.size
        radius = config.radius_px
        if conditions.get("lesion_size_mm") and self.spacing_mm:
            radius = conditions["lesion_size_mm"] / 2 / self.spacing_mm
        radius = float(np.clip(radius, config.min_radius_px, config.max_radius_px))
        return x, y, radius + config.grow_px

    @torch.no_grad()
    def refine(self, images: np.ndarray, seeds: Sequence[int], conditions: Sequence[dict] | None = None) -> np.ndarray:
        """The images with their requested lesions painted in (N, H, W) in [0, 1] (no requests: unchanged)."""
        images = np.asarray(images, dtype=np.float32)
        conditions = [{}] * len(images) if conditions is None else conditions
        if (
            images.ndim != 3
            or images.shape[1:] != (self.size, self.size)
            or not len(images) == len(seeds) == len(conditions)
        ):
            raise InputError(
                self.checkpoint.folder,
                f"this painter paints {len(seeds)} images of {self.size}×{self.size} (one request each), "
                f"got {images.shape} and {len(conditions)} requests",
            )
        out = images.copy()
        places = [self.place(c, s) for c, s in zip(conditions, seeds, strict=True)]
        rows = [k for k, p in enumerate(places) if p is not None]
        if not rows:
            return out
        p = self.config.patch_px
        centres = torch.tensor([[round(places[k][0]), round(places[k][1])] for k in rows], dtype=torch.float32)
        radii = torch.tensor([places[k][2] for k in rows], dtype=torch.float32)
        kinds = torch.tensor(
            [KINDS.index(kind_of(conditions[k].get("category"), conditions[k].get("pathology"))) for k in rows]
        )
        patches = crop_patches(torch.from_numpy(images[rows])[:, None], centres, p)
        discs = disc_masks(torch.full((len(rows), 2), float(p // 2)), radii, p)
        noise = torch.stack(
            [
                torch.randn(1, p, p, generator=torch.Generator().manual_seed(stage_seed(seeds[k], LESION_SALT)))
                for k in rows
            ]
        )
        painted = self.model.generator(
            condition(patches, discs, kinds).to(self.device),
            noise.to(self.device),
            patches.to(self.device),
            discs.to(self.device),
        )
        painted = painted[:, 0].float().clamp(0, 1).cpu().numpy()
        half = p // 2
        for j, k in enumerate(rows):  # paste the disc back: pixels outside it stay the input's, bit for bit
            ys, xs = np.nonzero(discs[j, 0].numpy())
            iy, ix = ys + int(centres[j, 1]) - half, xs + int(centres[j, 0]) - half
            keep = (iy >= 0) & (iy < self.size) & (ix >= 0) & (ix < self.size)
            out[k, iy[keep], ix[keep]] = painted[j, ys[keep], xs[keep]]
        return out


class Cascade(Pipeline):
    """A generator followed by refining stages (super-resolution, lesion painter), sampled as one pipeline at
    the last stage's size.

    Label maps and spatial maps are given at the cascade's size and reduced to the generator's; every
    stage's noise is a function of the image's seed, so an image still depends on its seed alone.
    """

    def __init__(self, base: Pipeline, stages: Sequence[RefiningStage]) -> None:  # no checkpoint of its own
        size = base.size
        for stage in stages:
            if stage.input_size != size:
                raise InputError(
                    stage.where,
                    f"this stage {'enlarges' if stage.size != stage.input_size else 'takes'} {stage.input_size} px "
                    f"images, the stage before it makes {size} px",
                )
            size = stage.size
        self.base, self.stages = base, list(stages)
        self.family, self.uses_sampler, self.uses_labels = base.family, base.uses_sampler, base.uses_labels
        self.needs_layout, self.follows_layout = base.needs_layout, base.follows_layout
        self.uses_conditions = base.uses_conditions
        self.device, self.size = base.device, size
        self.spacing_mm = base.spacing_mm * base.size / size if base.spacing_mm else None
        chain = "+".join([base.model_id, *(s.model_id for s in self.stages)])
        self.model_id = hashlib.sha256(chain.encode()).hexdigest()[: len(base.model_id)]

    def locate(self, conditions: list[dict], seeds: list[int]) -> list[dict]:
        for stage in self.stages:
            conditions = stage.locate(conditions, seeds)
        return conditions

    def describe(self) -> dict:
        generator = self.base.describe()
        return {
            **generator,
            "model_id": self.model_id,
            "image_size": self.size,
            "generator": generator,
            "refined_by": [s.describe() for s in self.stages],
        }

    def _sample(self, conditions: list[dict], seeds: list[int], options: SampleOptions) -> np.ndarray:
        factor = self.size // self.base.size
        labels, spatial = options.labels, options.spatial
        if labels is not None:
            labels = np.asarray(labels)[:, factor // 2 :: factor, factor // 2 :: factor]
        if spatial is not None:
            spatial = np.asarray(spatial, dtype=np.float32)
            spatial = spatial.reshape(*spatial.shape[:-2], self.base.size, factor, self.base.size, factor).mean(
                (-3, -1)
            )
        images = self.base._sample(conditions, seeds, replace(options, labels=labels, spatial=spatial))
        for stage in self.stages:
            images = stage.refine(images, seeds, conditions)
        return images


def load_pipeline(
    checkpoint: str,
    device: str = "auto",
    family: str | None = None,
    upscale: str | Path | Sequence[str | Path] | None = None,
) -> Pipeline:
    """The pipeline for a checkpoint's family (or check it is ``family``), followed by the super-resolution
    stages in ``upscale`` (checkpoints, in order) when given."""
    found = open_checkpoint(checkpoint, family=family).family
    spec = family_of(found)
    if not spec.generates:
        raise InputError(
            checkpoint, f"a {found!r} checkpoint cannot generate images; generators: {', '.join(generator_names())}"
        )
    pipeline = spec.pipeline_class()(checkpoint, device)
    if not upscale:
        return pipeline
    paths = [upscale] if isinstance(upscale, str | Path) else list(upscale)
    return Cascade(pipeline, [load_stage(path, device) for path in paths])


def load_stage(checkpoint: str | Path, device: str = "auto") -> RefiningStage:
    """The refiner (super-resolution stage or lesion painter) of a checkpoint, or the intensity map of a
    ``.json`` file (``mammosynth calibrate``); one line naming it if it is neither."""
    if Path(checkpoint).suffix.lower() == ".json":
        return CalibrationStage(checkpoint, device)
    spec = family_of(open_checkpoint(str(checkpoint)).family)
    if not spec.refines:
        raise InputError(
            checkpoint,
            f"--upscale needs a refining checkpoint (super-resolution or lesion painter), this is a {spec.name!r} one",
        )
    return spec.refiner_class()(str(checkpoint), device)
