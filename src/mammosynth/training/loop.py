"""One training loop for every generator family.

A family is a :class:`Task`: its modules, its optimiser groups and, per step, a list of :class:`Phase`
(optimiser name + loss function); a GAN has a discriminator and a generator phase, the latent diffusion
model an autoencoder stage and then a diffusion phase. The loop owns everything else: batch order,
gradient accumulation, autocast, warm-up, clipping, EMA, atomic checkpoints with optimiser and RNG
state, exact resume, losses.jsonl, TensorBoard and progress.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from mammosynth import __version__
from mammosynth.errors import InputError
from mammosynth.io.atomic import atomic_write
from mammosynth.io.images import write_png
from mammosynth.models.base import Config
from mammosynth.training import distributed
from mammosynth.training.checkpoint import (
    OPTIMIZER,
    Checkpoint,
    find_checkpoint,
    open_checkpoint,
    optimizer_from_tensors,
    optimizer_to_tensors,
    save_checkpoint,
)
from mammosynth.training.config import TrainConfig
from mammosynth.training.data import BatchOrder, PreparedImages, StepSampler, loader
from mammosynth.training.device import autocast, autocast_dtype, is_out_of_memory

Progress = Callable[..., None] | None


@dataclass
class StepContext:
    """What a phase's loss function may use: the step, the device, the run's random generator (the only
    source of randomness, saved in checkpoints) and a scratch dict shared by the step's phases."""

    step: int
    micro: int
    device: torch.device
    generator: torch.Generator
    scratch: dict = field(default_factory=dict)
    rank: int = 0
    world: int = 1

    def _share(self, draw, shape: tuple[int, ...]) -> torch.Tensor:
        """Per-example draws (first dimension: this rank's examples) made for the global batch and cut to
        this rank's share: every rank's generator stays in step, and a run on N processes draws what one
        process would."""
        if self.world > 1 and shape:
            whole = draw((shape[0] * self.world, *shape[1:]))
            return whole[self.rank * shape[0] : (self.rank + 1) * shape[0]].to(self.device)
        return draw(shape).to(self.device)

    def randn(self, *shape: int) -> torch.Tensor:
        return self._share(lambda s: torch.randn(*s, generator=self.generator), shape)

    def rand(self, *shape: int) -> torch.Tensor:
        return self._share(lambda s: torch.rand(*s, generator=self.generator), shape)

    def randint(self, high: int, *shape: int) -> torch.Tensor:
        return self._share(lambda s: torch.randint(0, high, s, generator=self.generator), shape)


@dataclass
class Phase:
    """One optimiser update per step: its loss, and whether it runs under mixed-precision autocast."""

    optimizer: str
    loss: Callable[[dict, StepContext], tuple[torch.Tensor, dict[str, float]]]
    mixed_precision: bool = True


def ema_parts(module: nn.Module, parts: tuple[str, ...]) -> nn.ModuleDict:
    """The named submodules of ``module`` as one ModuleDict, whose state keys (``generator.…``) are the
    module's own keys for those parts, so an EMA copy of it overlays the module's weights key for key."""
    return nn.ModuleDict({part: module.get_submodule(part) for part in parts})


def ema_with_warmup(decay: float):
    """``multi_avg_fn`` for ``AveragedModel``: an exponential moving average whose decay warms up as
    min(decay, (1 + n) / (10 + n)) after n updates (as in TensorFlow's and timm's EMA), so early weights do
    not linger for thousands of steps; integer buffers are copied, not averaged."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        n = float(n_averaged)
        rate = 1 - min(decay, (1 + n) / (10 + n))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, rate)
        else:
            for a, c in zip(averaged, current, strict=True):
                a.copy_(c)

    return update


class Task:
    """Base class of a family's training recipe."""

    family: str = ""
    # module name → its trainable parts that get an EMA copy (a frozen autoencoder or a discriminator has none)
    ema_modules: ClassVar[dict[str, tuple[str, ...]]] = {}
    uses_labels: bool = False  # batches carry label maps derived from the images (``labels``)

    def __init__(self, model_config: Config, train: TrainConfig, device: torch.device) -> None:
        self.model_config, self.train, self.device = model_config, train, device
        torch.manual_seed(train.seed)  # weight initialisation is a function of the seed
        self.modules: dict[str, nn.Module] = {}

    def parameter_groups(self) -> dict[str, tuple[list[nn.Parameter], float]]:
        """Optimiser name → (parameters, base learning rate)."""
        raise NotImplementedError

    def phases(self, step: int) -> list[Phase]:
        raise NotImplementedError

    # a two-stage family names the TrainConfig field that ends its first stage (the LDM: ``ae_steps``); under
    # a time budget the trainer moves that switch earlier so the second stage gets its share of the time
    first_stage_field: ClassVar[str | None] = None

    def ema_active(self, step: int) -> bool:
        return True

    def stage_start(self, step: int) -> int:
        """First step of the stage ``step`` belongs to (learning-rate warm-up restarts per stage)."""
        return 0

    def before_step(self, step: int, batches: list[dict], ctx: StepContext) -> None:
        """Hook run once per step before the phases (e.g. to calibrate a latent scale)."""

    @torch.no_grad()
    def samples(self, batch: dict, generator: torch.Generator) -> torch.Tensor | None:
        """A few images (N, 1, H, W) in [0, 1] for the sample grid, or None."""
        return None


class AdversarialTask(Task):
    """A generator/discriminator pair (``self.model.generator``, ``self.model.discriminator``): each step
    updates D (``discriminator_loss``, at ``train.lr_discriminator``) and then G (``generator_loss``, at
    ``train.lr``)."""

    model: nn.Module

    def parameter_groups(self) -> dict[str, tuple[list[nn.Parameter], float]]:
        return {
            "discriminator": (list(self.model.discriminator.parameters()), self.train.lr_discriminator),
            "generator": (list(self.model.generator.parameters()), self.train.lr),
        }

    def phases(self, step: int) -> list[Phase]:
        return [Phase("discriminator", self.discriminator_loss), Phase("generator", self.generator_loss)]

    def discriminator_loss(self, batch: dict, ctx: StepContext) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def generator_loss(self, batch: dict, ctx: StepContext) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError


def adamw_options(cfg: TrainConfig, device: torch.device) -> dict:
    """``fused=True`` (one kernel for every parameter's update) on CUDA when ``train.fused_adamw``; the
    default elsewhere (on 2 CPU cores the fused kernel measured no faster: 284 GAN steps in 30 s either way)."""
    return {"fused": True} if cfg.fused_adamw and device.type == "cuda" else {}


def compile_generators(task: Task) -> None:
    """``torch.compile`` (in place: state keys unchanged) the parts of ``task`` that get an EMA copy, i.e. the
    generators; discriminators run eagerly, since their R1 penalty takes a double backward that compiled
    graphs do not support."""
    for name, parts in task.ema_modules.items():
        for part in parts:
            task.modules[name].get_submodule(part).compile()


def channels_last(batch: dict) -> dict:
    """The batch's image-shaped tensors in NHWC memory order (the layout bf16 convolutions run fastest in on
    GPUs); values unchanged."""
    return {
        k: v.contiguous(memory_format=torch.channels_last)
        if isinstance(v, torch.Tensor) and v.dim() == 4 and v.is_floating_point()
        else v
        for k, v in batch.items()
    }


class Trainer:
    """Runs a :class:`Task` on a prepared dataset into ``run_dir`` (rank 0 writes files)."""

    def __init__(
        self,
        task: Task,
        data: PreparedImages,
        run_dir: str | Path,
        source: dict,
        rank: int = 0,
        world: int = 1,
        progress: Progress = None,
    ) -> None:
        self.task, self.data, self.run_dir = task, data, Path(run_dir)
        self.cfg: TrainConfig = task.train
        self.device = task.device
        self.source = source
        self.rank, self.world = rank, world
        self.progress = progress
        self.dtype = autocast_dtype(self.cfg.precision, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        self.order = BatchOrder(len(data), self.cfg.batch_size, self.cfg.accumulate, self.cfg.seed, rank, world)
        # one stream on every rank: per-example draws are made for the global batch and cut (StepContext)
        self.generator = torch.Generator().manual_seed(self.cfg.seed * 7919)
        if self.cfg.channels_last:
            with torch.no_grad():  # 4-D weights only (Module.to refuses a module holding a 5-D tensor)
                for module in task.modules.values():
                    for tensor in [*module.parameters(), *module.buffers()]:
                        if tensor.dim() == 4:
                            tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.base_lr: dict[str, float] = {}
        for name, (params, lr) in task.parameter_groups().items():
            self.optimizers[name] = torch.optim.AdamW(
                params,
                lr=lr,
                betas=tuple(self.cfg.betas),
                weight_decay=self.cfg.weight_decay,
                **adamw_options(self.cfg, self.device),
            )
            self.base_lr[name] = lr
        self.ema_sources = {name: ema_parts(task.modules[name], parts) for name, parts in task.ema_modules.items()}
        self.ema = {
            name: AveragedModel(source, multi_avg_fn=ema_with_warmup(self.cfg.ema_decay), use_buffers=True)
            for name, source in self.ema_sources.items()
        }
        if self.cfg.compile:
            compile_generators(task)
        self.step = 0
        self.writer = None
        self.tensorboard_ok = True  # False once the import failed (no scale extra): no TensorBoard logs
        self.spent_before_s = 0.0  # wall time of the earlier sessions of a resumed run
        self.plan: dict[str, int] = {}  # schedule decisions taken under a time budget (saved, replayed on resume)
        self.session_started: float | None = None

    # --- state -------------------------------------------------------------------------------------
    def weights(self) -> dict[str, torch.Tensor]:
        tensors = {}
        for name, module in self.task.modules.items():
            tensors.update({f"{name}/{k}": v for k, v in module.state_dict().items()})
        for name, ema in self.ema.items():
            tensors.update({f"ema/{name}/{k}": v for k, v in ema.module.state_dict().items()})
            tensors[f"ema_count/{name}"] = ema.n_averaged.detach().cpu().reshape(1)
        return tensors

    def state(self) -> dict:
        optim_meta = {}
        return {
            "family": self.task.family,
            "model": self.task.model_config.to_dict(),
            "train": self.cfg.to_dict(),
            # the preset or file name only: a config's folder may name its user or a patient
            "config_source": Path(str(self.source.get("source"))).name if self.source.get("source") else None,
            "data": self.data.summary(),
            "mammosynth": __version__,
            "torch": torch.__version__,
            "optimizers": optim_meta,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "world": self.world,
            "elapsed_s": round(self.elapsed_s(), 3),
            "plan": dict(self.plan),
        }

    def save(self) -> Path:
        optimizer_tensors: dict[str, torch.Tensor] = {}
        state = self.state()
        for name, optimizer in self.optimizers.items():
            tensors, meta = optimizer_to_tensors(name, optimizer)
            optimizer_tensors.update(tensors)
            state["optimizers"][name] = meta
        optimizer_tensors["rng/trainer"] = self.generator.get_state()
        optimizer_tensors["rng/torch"] = torch.get_rng_state()
        return save_checkpoint(
            self.run_dir, self.step, self.weights(), optimizer_tensors, state, self.cfg.keep_checkpoints
        )

    def restore(self, checkpoint: Checkpoint) -> None:
        if checkpoint.state["model"] != self.task.model_config.to_dict():
            raise InputError(
                checkpoint.folder,
                "checkpoint was made with another model config; resume with the same config or start a new run folder",
            )
        weights = checkpoint.tensors()
        for name, module in self.task.modules.items():
            module.load_state_dict({k[len(name) + 1 :]: v for k, v in weights.items() if k.startswith(f"{name}/")})
        for name, ema in self.ema.items():
            wanted = ema.module.state_dict()  # older checkpoints also averaged frozen parts: only ours are read
            ema.module.load_state_dict(
                {
                    k[len(name) + 5 :]: v
                    for k, v in weights.items()
                    if k.startswith(f"ema/{name}/") and k[len(name) + 5 :] in wanted
                }
            )
            ema.n_averaged.copy_(weights[f"ema_count/{name}"].reshape(()))
        tensors = checkpoint.tensors(OPTIMIZER)
        for name, optimizer in self.optimizers.items():
            optimizer_from_tensors(name, optimizer, tensors, checkpoint.state["optimizers"][name])
        self.generator.set_state(tensors["rng/trainer"])
        torch.set_rng_state(tensors["rng/torch"])
        if checkpoint.state.get("scaler"):
            self.scaler.load_state_dict(checkpoint.state["scaler"])
        self.step = checkpoint.step
        self.spent_before_s = float(checkpoint.state.get("elapsed_s", 0.0))
        self.plan = dict(checkpoint.state.get("plan") or {})
        if "first_stage_end" in self.plan and self.task.first_stage_field:
            setattr(self.cfg, self.task.first_stage_field, self.plan["first_stage_end"])

    def _plan_stages(self) -> bool:
        """Under a time budget, end a two-stage family's first stage once ``train.first_stage_share`` of the
        budget is spent (if ``train.<field>`` has not ended it already). The decision is recorded in the
        plan and a checkpoint is taken at the switch, so a resume replays it. Returns whether it switched."""
        field = self.task.first_stage_field
        if not field or self.cfg.time_budget_s <= 0 or "first_stage_end" in self.plan:
            return False
        if self.step >= getattr(self.cfg, field):
            return False
        # rank 0's clock decides for every rank (the same switch step everywhere)
        if not distributed.agree(self.elapsed_s() >= self.cfg.first_stage_share * self.cfg.time_budget_s, self.device):
            return False
        self.plan["first_stage_end"] = self.step
        setattr(self.cfg, field, self.step)
        return True

    def _plan_decay(self) -> bool:
        """Under a time budget, start the learning-rate decay once ``1 − train.lr_decay_share`` of the budget
        is spent, over as many steps as the rest of the budget buys at the speed so far (steps taken × share /
        (1 − share)). Recorded in the plan and checkpointed, so a resume replays the same schedule; rank 0's
        clock decides for every rank. Returns whether it decided now."""
        share = self.cfg.lr_decay_share
        if share <= 0 or self.cfg.time_budget_s <= 0 or "decay_start" in self.plan:
            return False
        if not distributed.agree(self.elapsed_s() >= (1 - share) * self.cfg.time_budget_s, self.device):
            return False
        self.plan["decay_start"] = self.step
        self.plan["decay_steps"] = max(1, round(self.step * share / (1 - share)))
        return True

    def _decay_window(self) -> tuple[int, int] | None:
        """(first step, number of steps) of the learning-rate decay, or None while there is none."""
        share = self.cfg.lr_decay_share
        if share <= 0:
            return None
        if self.cfg.time_budget_s > 0:
            return (self.plan["decay_start"], self.plan["decay_steps"]) if "decay_start" in self.plan else None
        length = max(1, round(self.cfg.steps * share))
        return self.cfg.steps - length, length

    def decay_factor(self, step: int) -> float:
        """The learning rates' multiplier at ``step``: 1 before the decay, then falling linearly, 1/length at
        its last step."""
        window = self._decay_window()
        if window is None or step < window[0]:
            return 1.0
        return max(0.0, (window[0] + window[1] - step) / window[1])

    def decay_done(self) -> bool:
        window = self._decay_window()
        return window is not None and self.step >= window[0] + window[1]

    def elapsed_s(self) -> float:
        """Wall time this run has trained, over every session (what ``train.time_budget_s`` limits)."""
        now = 0.0 if self.session_started is None else time.perf_counter() - self.session_started
        return self.spent_before_s + now

    def budget_spent(self) -> bool:
        return self.cfg.time_budget_s > 0 and self.elapsed_s() >= self.cfg.time_budget_s

    def planned_steps(self, start_step: int) -> int:
        """The step the run will end at: ``train.steps``, or fewer when the time budget runs out first
        (estimated from this session's speed, so the progress bar's total and ETA follow the budget)."""
        if self.cfg.time_budget_s <= 0 or self.step <= start_step:
            return self.cfg.steps
        per_step = (time.perf_counter() - self.session_started) / (self.step - start_step)
        left = max(0.0, self.cfg.time_budget_s - self.elapsed_s())
        return min(self.cfg.steps, self.step + math.ceil(left / per_step))

    # --- the loop ----------------------------------------------------------------------------------
    def _batches(self, step: int) -> list[dict]:
        return [self.data.batch(self.order.indices(step, micro)) for micro in range(self.cfg.accumulate)]

    def _stream(self, start: int) -> Iterator[list[dict]]:
        """Each step's micro-batches from ``start`` on, in :class:`BatchOrder`: read by ``train.workers``
        DataLoader processes (pinned for a GPU), or with none by this process, the next step on a thread
        while this one trains (``train.prefetch``)."""
        if self.cfg.workers > 0:
            micro_batches = StepSampler(self.order, start, self.cfg.steps)
            batches = iter(loader(self.data, micro_batches, self.cfg.workers, pin_memory=self.device.type == "cuda"))
            try:
                for _ in range(start, self.cfg.steps):
                    yield [next(batches) for _ in range(self.cfg.accumulate)]
            finally:
                del batches  # stops the workers
            return
        if not self.cfg.prefetch:
            for step in range(start, self.cfg.steps):
                yield self._batches(step)
            return
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(self._batches, start)
            for step in range(start, self.cfg.steps):
                batches = pending.result()
                if step + 1 < self.cfg.steps:
                    pending = pool.submit(self._batches, step + 1)
                yield batches

    def _set_lr(self, step: int) -> None:
        warm = min(1.0, (step - self.task.stage_start(step) + 1) / max(1, self.cfg.warmup_steps))
        warm *= self.decay_factor(step)
        for name, optimizer in self.optimizers.items():
            for group in optimizer.param_groups:
                group["lr"] = self.base_lr[name] * warm

    def train_step(self, step: int, batches: list[dict]) -> dict[str, float]:
        if self.cfg.channels_last:
            batches = [channels_last(b) for b in batches]
        ctx = StepContext(step, 0, self.device, self.generator, rank=self.rank, world=self.world)
        self.task.before_step(step, batches, ctx)
        self._set_lr(step)
        logs: dict[str, float] = {}
        for phase in self.task.phases(step):
            optimizer = self.optimizers[phase.optimizer]
            optimizer.zero_grad(set_to_none=True)
            for micro, batch in enumerate(batches):
                ctx.micro = micro
                with autocast(self.device, self.dtype if phase.mixed_precision else None):
                    loss, parts = phase.loss(batch, ctx)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"{phase.optimizer} loss is {float(loss)} at step {step}")
                self.scaler.scale(loss / len(batches)).backward()
                for key, value in parts.items():
                    logs[key] = logs.get(key, 0.0) + value / len(batches)
            self.scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group["params"]]
            distributed.average_gradients(params)  # the global batch's gradient on every rank
            if self.cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
            self.scaler.step(optimizer)
            self.scaler.update()
        if self.task.ema_active(step):
            for name, ema in self.ema.items():
                ema.update_parameters(self.ema_sources[name])
        return distributed.average_values(logs, self.device)

    def run(self, resume: bool = False) -> dict:
        """Train to ``cfg.steps``; with ``resume`` continue from the run folder's newest checkpoint."""
        losses_path = self.run_dir / "losses.jsonl"
        if resume and (found := find_checkpoint(self.run_dir)) is not None:
            self.restore(open_checkpoint(found, family=self.task.family))
            if self.rank == 0:
                _truncate_log(losses_path, self.step)
        elif self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            losses_path.unlink(missing_ok=True)
        if self.rank == 0:
            with atomic_write(self.run_dir / "config.json", "w") as handle:
                json.dump(
                    {
                        "family": self.task.family,
                        "model": self.task.model_config.to_dict(),
                        "train": self.cfg.to_dict(),
                    },
                    handle,
                    indent=1,
                )
        # every rank starts from rank 0's weights (a fresh run's initialisations could differ between ranks)
        distributed.broadcast_modules([*self.task.modules.values(), *(e.module for e in self.ema.values())])
        distributed.barrier()  # the run folder exists before any rank goes on
        start_step, started = self.step, time.perf_counter()
        self.session_started = started
        images_per_step = self.cfg.batch_size * self.cfg.accumulate  # the global batch, over all ranks
        stream = self._stream(self.step)
        recent: list[float] = []
        try:
            with open(losses_path if self.rank == 0 else os.devnull, "a") as log_file:
                # the budget is read once per step (``last``): a second read could find it spent just after a step
                # that was not saved as the last one, and the run would end without its final checkpoint; rank
                # 0's reading decides for every rank (one that stopped alone would leave the others waiting)
                last = distributed.agree(
                    self.step >= self.cfg.steps or self.budget_spent() or self.decay_done(), self.device
                )
                while not last:
                    step = self.step
                    batches = next(stream)
                    try:
                        logs = self.train_step(step, batches)
                    except (RuntimeError, torch.OutOfMemoryError) as exc:
                        if is_out_of_memory(exc):
                            raise InputError(self.source.get("source"), _oom_advice(self.cfg, self.device)) from None
                        raise
                    self.step = step + 1
                    recent = [*recent[-19:], next(iter(logs.values()), math.nan)]
                    log_file.write(json.dumps({"step": step, **{k: round(v, 8) for k, v in logs.items()}}) + "\n")
                    elapsed = time.perf_counter() - started
                    speed = (self.step - start_step) * images_per_step / max(elapsed, 1e-9)
                    switched = self._plan_stages() | self._plan_decay()  # both decide each step
                    last = distributed.agree(
                        self.step == self.cfg.steps or self.budget_spent() or self.decay_done(), self.device
                    )
                    if self.step % self.cfg.log_every == 0 or last:
                        log_file.flush()
                        self._log_scalars(logs, speed)
                    if self.progress and self.rank == 0:
                        status = f"loss {np.mean(recent):.4f} · {speed:.1f} img/s"
                        self.progress(self.step, self.planned_steps(start_step), status)
                    if self.step % self.cfg.sample_every == 0 or last:
                        self._sample_grid(batches[0])
                    if (self.step % self.cfg.checkpoint_every == 0 or last or switched) and self.rank == 0:
                        # every loss line up to the checkpoint is on disk before it: a kill right after it
                        # (log_every not dividing checkpoint_every) must not leave a gap a resume cannot fill
                        log_file.flush()
                        os.fsync(log_file.fileno())
                        self.save()
        finally:
            stream.close()
            if self.writer:
                self.writer.close()
        elapsed = time.perf_counter() - started
        return {
            "run": str(self.run_dir),
            "family": self.task.family,
            "steps": self.step,
            "resumed_from": start_step or None,
            "seconds": round(elapsed, 2),
            "elapsed_s": round(self.elapsed_s(), 2),
            "stopped_by": "time_budget" if self.step < self.cfg.steps else "steps",
            "train_budget_s": self.cfg.time_budget_s or None,
            "images_per_second": round((self.step - start_step) * images_per_step / max(elapsed, 1e-9), 2),
            "checkpoint": str(find_checkpoint(self.run_dir)),
            "last_losses": _last(losses_path),
        }

    # --- logging -----------------------------------------------------------------------------------
    def _tensorboard(self):
        """The TensorBoard writer, or ``None`` without the ``scale`` extra (losses.jsonl and the sample grids
        are written either way)."""
        if self.writer is None and self.rank == 0 and self.tensorboard_ok:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self.tensorboard_ok = False
                return None
            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=self.step)
        return self.writer

    def _log_scalars(self, logs: dict[str, float], speed: float) -> None:
        writer = self._tensorboard()
        if writer is None:
            return
        for key, value in logs.items():
            writer.add_scalar(f"loss/{key}", value, self.step)
        writer.add_scalar("perf/images_per_second", speed, self.step)
        for name, optimizer in self.optimizers.items():
            writer.add_scalar(f"lr/{name}", optimizer.param_groups[0]["lr"], self.step)

    def _sample_grid(self, batch: dict) -> None:
        if self.rank != 0:
            return
        generator = torch.Generator().manual_seed(self.cfg.seed)
        for module in self.task.modules.values():
            module.eval()
        try:
            images = self.task.samples(batch, generator)
        finally:
            for module in self.task.modules.values():
                module.train()
        if images is None:
            return
        grid = make_grid(images.float().cpu().numpy()[:, 0])
        write_png(self.run_dir / "samples" / f"step-{self.step:08d}.png", grid, bits=8)
        writer = self._tensorboard()
        if writer is not None:
            writer.add_image("samples", grid[None], self.step)


def make_grid(images: np.ndarray, columns: int = 4, pad: int = 2) -> np.ndarray:
    """(N, H, W) → one mosaic image with ``pad`` black pixels between tiles."""
    n, h, w = images.shape
    rows = max(1, math.ceil(n / columns))
    columns = min(columns, n)
    grid = np.zeros((rows * (h + pad) - pad, columns * (w + pad) - pad), dtype=np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = image
    return np.clip(grid, 0, 1)


def _oom_advice(cfg: TrainConfig, device: torch.device) -> str:
    half = max(1, cfg.batch_size // 2)
    return (
        f"out of memory on {device} with train.batch_size={cfg.batch_size}: use --set train.batch_size={half} "
        f"--set train.accumulate={cfg.accumulate * 2} (same effective batch) or a smaller config"
    )


def _truncate_log(path: Path, step: int) -> None:
    """Drop loss lines written after the checkpoint we resume from (they will be recomputed)."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] < step]
    with atomic_write(path, "w") as handle:
        handle.write("".join(line + "\n" for line in keep))


def _last(path: Path) -> dict:
    lines = path.read_text().splitlines() if path.is_file() else []
    return json.loads(lines[-1]) if lines else {}
