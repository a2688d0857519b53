"""Batch normalisation over the global batch of a torchrun job.

``nn.SyncBatchNorm`` does this on GPUs only (it refuses CPU tensors), so a 2-process CPU run could not be
checked against one process; this subclass of ``nn.BatchNorm2d`` (same parameters, buffers and state keys, so
checkpoints load either way) all-reduces the batch's sums with autograd-aware collectives when a process group
is active and behaves exactly as ``nn.BatchNorm2d`` otherwise.

Example:
    >>> norm = BatchNorm2d(3, affine=False)
    >>> out = norm(torch.randn(4, 3, 8, 8))
    >>> bool(out.mean().abs() < 1e-5)
    True
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


def _global_sum(tensor: torch.Tensor) -> torch.Tensor:
    from torch.distributed.nn.functional import all_reduce  # gradients flow back to every rank

    return all_reduce(tensor)


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training statistics cover every rank's images (two passes: the mean, then the
    squared deviations from it, as one process computes them)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        x32 = x.float()
        count = _global_sum(torch.tensor([x.shape[0] * x.shape[2] * x.shape[3]], dtype=torch.float32, device=x.device))
        mean = _global_sum(x32.sum(dim=(0, 2, 3))) / count
        centred = x32 - mean[None, :, None, None]
        var = _global_sum(centred.pow(2).sum(dim=(0, 2, 3))) / count
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var.detach() * count / (count - 1).clamp(min=1)
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        out = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            out = out * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return out.to(x.dtype)


__all__ = ["BatchNorm2d"]
