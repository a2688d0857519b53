"""An expansion's batches as Ray tasks: a local cluster (``--ray local``) or a running one (``--ray ADDRESS``).

The driver plans, checks the inputs and writes the plan; each task makes a block of whole batches with
:class:`~mammosynth.export.expand.ChunkJob` (the generator loaded once per worker process) and writes their
records into the output folder, which every node must see (a shared file system). Every image's seed is a
function of its index and a batch is always drawn whole, so the output does not depend on the number of
workers. A worker that dies has its task retried by Ray (``max_retries``): the block is drawn again and
writes only the records it lacks, never a duplicate; a driver that dies is resumed by the same command.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator

from mammosynth.errors import InputError
from mammosynth.extras import require

#: blocks per worker: small enough that a retried block costs little, large enough to amortise a task
BLOCKS_PER_WORKER = 4


def _expand_block(job, chunks: list[list[int]]) -> int:
    return sum(job.run(chunk) for chunk in chunks)


def _reachable(address: str) -> None:
    """A ``host:port`` (or ``ray://host:port``) address that answers, checked in 5 s: Ray itself would retry
    for minutes."""
    import socket

    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and other forms Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise InputError("--ray", f"cannot reach the Ray cluster at {address!r}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def ray_session(address: str, workers: int | None) -> Iterator:
    """Ray, started (``"local"``: a local cluster of ``workers`` CPUs) or joined, for the block; entered before
    an expansion writes anything, so a bad address is one line and an untouched output folder."""
    require("scale", ("ray",), "expand --ray")
    import ray

    if workers is not None and workers < 1:
        raise InputError("--ray-workers", f"must be at least 1, got {workers}")
    if address != "local" and workers is not None:
        raise InputError("--ray-workers", "sizes a local cluster only; a running cluster has its own")
    started_here = not ray.is_initialized()
    if started_here:
        if address == "local":
            ray.init(
                num_cpus=workers or os.cpu_count() or 1,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        else:
            _reachable(address)
            try:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise InputError("--ray", f"cannot reach the Ray cluster at {address!r}: {exc}") from None
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()


def run_on_ray(
    ray,
    job,
    chunks: list[list[int]],
    progress: Callable[[int, int], None] | None,
    finished: int,
    total: int,
) -> int:
    """Make ``chunks`` on Ray (a module returned by :func:`ray_session`); returns the number of images made.
    Progress is aggregated in the driver as blocks complete."""
    slots = max(1, int(ray.available_resources().get("CPU", 1)))
    per_block = max(1, math.ceil(len(chunks) / (slots * BLOCKS_PER_WORKER)))
    blocks = [chunks[k : k + per_block] for k in range(0, len(chunks), per_block)]
    task = ray.remote(num_cpus=1, max_retries=3, retry_exceptions=False)(_expand_block)
    shared = ray.put(job)
    pending = {task.remote(shared, block): sum(map(len, block)) for block in blocks}
    made = 0
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            made += ray.get(ref)
            finished += pending.pop(ref)
        if progress:
            progress(finished, total)
    return made
