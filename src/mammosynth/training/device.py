"""The one place that chooses the device and the autocast precision (rank-aware for torchrun later)."""

from __future__ import annotations

import contextlib
import os

import torch

from mammosynth.errors import InputError


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` → this rank's CUDA device when available (``LOCAL_RANK`` under torchrun), else CPU.

    On CPU it also flushes denormal floats to zero: a GAN discriminator whose activations decayed into
    denormals made each training step many times slower."""
    if name == "auto":
        name = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(None, f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(None, f"device {name!r} requested but CUDA is not available")
    if device.type == "cpu":
        torch.set_flush_denormal(True)
    return device


def cpu_has_native_bf16() -> bool:
    """True when oneDNN has bf16 kernels for this CPU (AVX512-BF16 or AMX); without them bf16 is emulated
    and slower than fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for a precision setting. ``auto``: bf16 on GPUs that have it (else fp16), bf16 on
    CPUs with native bf16 kernels (1.28× faster UNet training than fp32 measured on 2 AVX512-BF16 cores,
    benchmarks/bench_ldm.py), otherwise fp32."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda" and not cpu_has_native_bf16()):
        return None
    if device.type != "cuda":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if precision == "auto" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def is_out_of_memory(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text


#: Memory one image holds during a training step, per pixel (activations, gradients, the optimiser's share):
#: measured 2.1–2.2 kB on 2 CPU cores for ``gan/cpu-64`` (8 → 128 images: 602 → 1,666 MB peak RSS) and
#: ``ldm/tiny`` at 64 px; rounded up so the guard errs towards running.
TRAIN_BYTES_PER_PIXEL = 3072
#: Sampling holds no gradients: about a third of it.
SAMPLE_BYTES_PER_PIXEL = 1024


def available_bytes(device: torch.device) -> int | None:
    """Memory free for a new allocation on ``device`` (CUDA: the driver's free memory; CPU: MemAvailable),
    ``None`` when it cannot be read."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_batch_memory(
    images: int, side_px: int, device: torch.device, flag: str, per_pixel: int = TRAIN_BYTES_PER_PIXEL
) -> None:
    """Refuse, before anything is allocated, a batch of ``images`` at ``side_px`` whose estimated memory
    (``per_pixel`` bytes per pixel of each image) is more than ``device`` has free; the line names ``flag``."""
    need = images * side_px * side_px * per_pixel
    have = available_bytes(device)
    if have is not None and need > have:
        raise InputError(
            flag,
            f"{images} images of {side_px} px need about {need / 1e9:.1f} GB at once (estimate), more than the "
            f"{have / 1e9:.1f} GB free on {device.type}; lower {flag}",
        )
