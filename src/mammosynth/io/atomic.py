"""Write files and output folders so that a crash never leaves anything half-written.

Files go to a temporary sibling and are renamed into place (``os.replace`` is atomic on one file system).
Output folders are assembled under a hidden temporary sibling and renamed when complete.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from mammosynth.errors import InputError

_UMASK = os.umask(0o022)  # read the process umask (only settable), then put it back
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it onto ``path`` only if the block succeeds.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
        >>> with atomic_write(target, "w") as f:
        ...     _ = f.write("done")
        >>> target.read_text()
        'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode a plain open() would
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_unfinished_writes(folder: str | Path) -> int:
    """Delete the temporary files :func:`atomic_write` leaves when its process is killed mid-write
    (``.NAME.XXXX.tmp``) anywhere under ``folder``; returns how many. Call it only when no writer is left
    (an output folder's run has finished): a live writer's file would go too.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / ".a.png.k3x9.tmp").write_bytes(b"half")
        >>> remove_unfinished_writes(folder), sorted(folder.iterdir())
        (1, [])
    """
    removed = 0
    for path in Path(folder).rglob(".*.tmp"):
        if path.is_file() and UNFINISHED.fullmatch(path.name):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


#: The name :func:`atomic_write` gives its temporary file beside ``NAME``.
UNFINISHED = re.compile(r"\..+\.[^./]+\.tmp")


def check_output_dir(out_dir: str | Path, overwrite: bool) -> Path:
    """Refuse, before any work: an existing, non-empty output folder unless ``overwrite`` is set; a path
    below a file; a folder this process may not write into."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not overwrite:
        raise InputError(out_dir, "output folder exists and is not empty; pass --overwrite to replace it")
    existing = next((p for p in (out_dir, *out_dir.parents) if p.exists()), None)
    if existing is not None and existing != out_dir and not existing.is_dir():
        raise InputError(out_dir, f"cannot make this folder: {existing} is a file")
    if existing is not None and existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(out_dir, f"cannot write into {existing} (permission denied)")
    return out_dir


#: The hidden siblings an output folder NAME is built in (``.NAME.PID.XXXX.partial``) and an old one is moved
#: to while it is replaced (``.NAME.old-PID``): the writing process's id is in both names.
SCRATCH = re.compile(r"\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.[^/.]+\.partial|old-(?P<old>\d+))")


def output_name(path: str) -> str:
    """``path`` with a scratch folder in it shown as the output folder it becomes (for messages).

    Example:
        >>> output_name("/data/.out.4242.k3x9.partial/images/a.png")
        '/data/out/images/a.png'
    """
    return "/".join(m["name"] if (m := SCRATCH.fullmatch(part)) else part for part in str(path).split("/"))


def remove_stale(parent: Path, name: str) -> None:
    """Remove the scratch folders (:data:`SCRATCH`) a killed run left beside ``NAME``: those whose process
    is gone; a live run's are left alone."""
    if not parent.is_dir():
        return
    for entry in parent.glob(f".{glob.escape(name)}.*"):
        match = SCRATCH.fullmatch(entry.name)
        if match is None or match["name"] != name or not entry.is_dir():
            continue
        pid = int(match["pid"] or match["old"])
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True  # running, or someone else's (PermissionError)


@contextlib.contextmanager
def atomic_output_dir(out_dir: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``out_dir`` when the block succeeds, and vanishes if it fails.

    An existing ``out_dir`` is refused unless ``overwrite`` is true; it is only removed once the new
    content is complete. The temporary folder's name carries this process's id, so a rerun after a kill
    removes what the killed run left (:func:`remove_stale`).
    """
    out_dir = check_output_dir(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out_dir.parent, out_dir.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.{os.getpid()}.", suffix=".partial", dir=out_dir.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)
