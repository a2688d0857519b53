"""Data-parallel training under ``torchrun`` (torch.distributed: NCCL on GPUs, gloo on CPUs).

Every process holds the whole model; each step every rank takes its share of the step's global batch
(:class:`~mammosynth.training.data.BatchOrder`), back-propagates, and the gradients are averaged across ranks
before the optimiser steps, so the ranks' weights stay identical (what DistributedDataParallel does).

Gradients are averaged here, with one ``all_reduce`` per optimiser and step, rather than by wrapping modules
in DistributedDataParallel: a step of an adversarial family runs two optimisers on different parts of one
model, back-propagates the discriminator twice per step and takes a double-backward R1 penalty, which
DDP's reducer (one backward per forward, every parameter of the wrapped module) does not follow.

Example (one process: nothing to do):
    >>> init_from_env()
    (0, 1)
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def init_from_env() -> tuple[int, int]:
    """``(rank, world)``: joins the process group torchrun describes (``WORLD_SIZE`` > 1 in the environment)
    on NCCL with CUDA, gloo without; ``(0, 1)`` when run as one plain process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def average_gradients(parameters: list[nn.Parameter]) -> None:
    """Replace every gradient by its mean over the ranks (one flat all_reduce)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads or not active():
        return
    flat = torch.cat([g.reshape(-1).float() for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def average_values(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Logged numbers (each rank's share of the batch) averaged over the ranks: the global batch's value."""
    if not values or not active():
        return values
    keys = sorted(values)
    flat = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    return dict(zip(keys, flat.tolist(), strict=True))


def global_std(values: torch.Tensor) -> float:
    """The standard deviation (unbiased) of every rank's ``values`` taken together, in two passes as one
    process takes it: the mean first, then the squared deviations from it."""
    x = values.detach().double().reshape(-1)
    if not active():
        return float(x.std())
    sums = torch.stack([x.sum(), torch.tensor(float(x.numel()), dtype=torch.float64, device=x.device)])
    dist.all_reduce(sums)
    mean, count = sums[0] / sums[1], sums[1]
    squares = (x - mean).pow(2).sum()
    dist.all_reduce(squares)
    return float((squares / (count - 1).clamp(min=1)).sqrt())


def broadcast_modules(modules: list[nn.Module]) -> None:
    """Rank 0's weights and buffers on every rank (the start, and after a resume)."""
    if not active():
        return
    with torch.no_grad():
        for module in modules:
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, 0)


def agree(flag: bool, device: torch.device) -> bool:
    """Rank 0's decision on every rank (when to stop: a time budget read on each rank could differ)."""
    if not active():
        return flag
    value = torch.tensor([int(flag)], device=device)
    dist.broadcast(value, 0)
    return bool(value.item())


def barrier() -> None:
    if active():
        dist.barrier()


def finish() -> None:
    """Leave the process group together: a rank that exits while another still talks to it can take the
    other down with it (gloo aborts on a closed peer)."""
    if active():
        dist.barrier()
        dist.destroy_process_group()
