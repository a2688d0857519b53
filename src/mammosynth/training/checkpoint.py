"""Checkpoints: one folder per step with safetensors weights, safetensors optimiser tensors and a JSON
state (config, step, optimiser hyper-parameters, data summary). A folder is assembled under a hidden name
and renamed into place, so a kill at any moment leaves either the whole checkpoint or none."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from mammosynth import validate as check
from mammosynth.errors import InputError

FORMAT = "mammosynth-checkpoint/1"
WEIGHTS, OPTIMIZER, STATE = "weights.safetensors", "optimizer.safetensors", "state.json"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def optimizer_to_tensors(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimiser state dict into tensors (for safetensors) and JSON."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{name}/{index}/{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}/{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_tensors(name: str, optimizer: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict = {}
    prefix = f"{name}/"
    for key, value in tensors.items():
        if key.startswith(prefix):
            index, field = key[len(prefix) :].split("/", 1)
            state.setdefault(int(index), {})[field] = value
    for key, value in meta.get("scalars", {}).items():
        index, field = key.split("/", 1)
        state.setdefault(int(index), {})[field] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(
    run_dir: Path,
    step: int,
    weights: dict[str, torch.Tensor],
    optimizer_tensors: dict[str, torch.Tensor],
    state: dict,
    keep: int = 3,
) -> Path:
    """Write ``run_dir/checkpoints/step-XXXXXXXX`` atomically and prune all but the newest ``keep``."""
    folder = Path(run_dir) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step-{step:08d}"
    tmp = folder / f".tmp-step-{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, str(tmp / WEIGHTS))
    save_file(optimizer_tensors, str(tmp / OPTIMIZER))
    (tmp / STATE).write_text(json.dumps({"format": FORMAT, "step": step, **state}, indent=1, default=_json_default))
    for name in (WEIGHTS, OPTIMIZER, STATE):
        with open(tmp / name, "rb") as handle:
            os.fsync(handle.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(folder)
    for old in sorted(folder.glob("step-*"))[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _json_default(value):
    if torch.is_tensor(value):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def find_checkpoint(path: str | Path) -> Path | None:
    """A checkpoint folder, or the newest complete checkpoint of a run folder (``None`` if it has none)."""
    path = Path(path)
    if (path / STATE).is_file():
        return path
    steps = sorted(p for p in (path / "checkpoints").glob("step-*") if (p / STATE).is_file())
    return steps[-1] if steps else None


@dataclass
class Checkpoint:
    """An opened checkpoint: its folder, JSON state and (lazily) its tensors."""

    folder: Path
    state: dict

    @property
    def family(self) -> str:
        return self.state["family"]

    @property
    def step(self) -> int:
        return int(self.state["step"])

    def tensors(self, name: str = WEIGHTS) -> dict[str, torch.Tensor]:
        path = self.folder / name
        if not path.is_file():
            raise InputError(path, "missing; the checkpoint is incomplete")
        try:
            with safe_open(str(path), framework="pt") as handle:
                return {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise InputError(path, f"truncated or corrupt safetensors file ({exc})") from None

    def hash(self) -> str:
        """SHA-256 of the weights file (first 16 hex digits): the model id in provenance."""
        digest = hashlib.sha256()
        with open(self.folder / WEIGHTS, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()[:16]


def _check_state(state: dict, where: Path) -> None:
    """The fields a run reads back, typed and bounded: a hand-edited or damaged ``state.json`` is one line."""
    check.text(state["family"], where, "family", 100)
    check.number(state.get("step"), where, "step", lo=0, hi=10**12, integer=True)
    if "elapsed_s" in state:
        check.number(state["elapsed_s"], where, "elapsed_s", lo=0)
    check.mapping(state.get("model", {}), where, "model")
    for name in ("plan", "optimizers", "train"):
        if state.get(name) is not None:
            check.mapping(state[name], where, name)
    for key, value in (state.get("plan") or {}).items():
        check.number(value, where, f"plan.{key}", lo=0, integer=True)


def open_checkpoint(path: str | Path, family: str | None = None, image_size: int | None = None) -> Checkpoint:
    """Open a checkpoint (or a run folder's newest) and check it is the expected family and resolution."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "checkpoint not found")
    folder = find_checkpoint(path)
    if folder is None:
        raise InputError(path, "no checkpoint here (expected state.json or checkpoints/step-*/)")
    try:
        state = json.loads((folder / STATE).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(folder / STATE, f"unreadable checkpoint state ({exc.__class__.__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "family" not in state:
        raise InputError(folder / STATE, "not a mammosynth checkpoint")
    _check_state(state, folder / STATE)
    if family is not None and state["family"] != family:
        raise InputError(folder, f"checkpoint is a {state['family']!r} model, not {family!r}")
    trained = state.get("model", {}).get("image_size")
    if image_size is not None and trained != image_size:
        raise InputError(folder, f"checkpoint was trained at {trained} px, not {image_size} px")
    if not (folder / WEIGHTS).is_file():
        raise InputError(folder / WEIGHTS, "missing; the checkpoint is incomplete")
    return Checkpoint(folder, state)


def load_module(checkpoint: Checkpoint, name: str, module: nn.Module, prefer_ema: bool = True) -> str:
    """Load module ``name``'s weights, with its EMA copy laid over the parts it covers when ``prefer_ema``
    and the EMA has been updated at least once (a count of 0 means random weights); returns which."""
    tensors = checkpoint.tensors()
    state = {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(f"{name}/")}
    if not state:
        raise InputError(checkpoint.folder, f"checkpoint has no weights for {name!r}")
    source = name
    count = tensors.get(f"ema_count/{name}")
    if prefer_ema and count is not None and int(count.reshape(-1)[0]) > 0:
        averaged = {k[len(name) + 5 :]: v for k, v in tensors.items() if k.startswith(f"ema/{name}/")}
        unknown = sorted(set(averaged) - set(state))
        if unknown:
            raise InputError(checkpoint.folder / WEIGHTS, f"EMA weights {unknown[0]!r} do not belong to {name!r}")
        if averaged:
            state.update(averaged)
            source = f"ema/{name}"
    broken = next((k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if broken is not None:
        raise InputError(
            checkpoint.folder / WEIGHTS, f"weight {broken!r} holds NaN or infinite values (a run that diverged?)"
        )
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise InputError(checkpoint.folder / WEIGHTS, f"weights do not fit this model ({first})") from None
    return source
