"""A prepared dataset packed for streaming: fixed-stride ``.npy`` arrays read one example at a time.

Training from PNGs decodes every image and its masks at every visit, and caching the decoded examples in RAM
grows with the dataset (about 780 MB per 2,000 images at 256² with masks). A packed dataset holds the decoded
examples at one training size in three arrays beside the manifest, ``packed-<size>px[-labels]/``:

- ``images.npy``: float16, (N, S, S), the image in [0, 1];
- ``maps.npy``: uint8, (N, S, S), bits 0–2 the spatial channels (breast, pectoral, lesion), bits 3–5 the
  verifier kind per pixel;
- ``labels.npy``: uint8, (N, S, S), the derived label map (only for the translator's ``-labels`` pack);
- ``index.json``: the manifest's SHA-256 (a pack of another manifest is stale and is not used) and the size.

Reading an example is one ``os.pread`` per array at a computed offset, so any worker process reads any example
in any order, RAM stays flat in the dataset's size (nothing is mapped or cached), and the deterministic batch
order (:class:`~mammosynth.training.data.BatchOrder`) and exact resume are kept. Why not WebDataset, LitData
or MosaicML Streaming: their shards are read in sequence and shuffled in a buffer, which gives up the batch
order as a function of (seed, step) that exact resume and the N-process/1-process equality rest on; they
would also be one more dependency for what numpy's own file format does here.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> np.save(folder / "a.npy", np.arange(12, dtype=np.uint8).reshape(3, 2, 2))
    >>> Rows(folder / "a.npy").read(2).tolist()
    [[8, 9], [10, 11]]
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mammosynth.datasets.schema import MANIFEST
from mammosynth.io.atomic import atomic_output_dir

SPATIAL_BITS = 3  # breast, pectoral, lesion


def pack_dir(root: str | Path, size: int, labels: bool = False) -> Path:
    """Where the pack of ``root`` at ``size`` pixels lives."""
    return Path(root) / f"packed-{size}px{'-labels' if labels else ''}"


def manifest_digest(root: str | Path) -> str:
    return hashlib.sha256((Path(root) / MANIFEST).read_bytes()).hexdigest()


class Rows:
    """Row ``i`` of a C-ordered ``.npy`` file, read with one ``pread`` (no mapping, no cache); the file is
    opened afresh in each process (a DataLoader worker forked from the trainer gets its own descriptor)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(handle)
            self.offset = handle.tell()
        if fortran or dtype.hasobject:
            raise ValueError(f"{path.name}: not a plain C-ordered array")
        self.shape, self.dtype = tuple(shape), dtype
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * dtype.itemsize
        self._fd: int | None = None
        self._pid = -1

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fd": None, "_pid": -1}

    def read(self, index: int) -> np.ndarray:
        if self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        data = os.pread(self._fd, self.row_bytes, self.offset + index * self.row_bytes)
        return np.frombuffer(data, dtype=self.dtype).reshape(self.shape[1:])


def encode_maps(spatial: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """(3, H, W) 0/1 spatial channels and (H, W) kinds → one uint8 map."""
    out = kinds.astype(np.uint8) << SPATIAL_BITS
    for bit in range(SPATIAL_BITS):
        out |= (spatial[bit] > 0.5).astype(np.uint8) << bit
    return out


def decode_maps(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`encode_maps`: float32 (3, H, W) spatial channels and int64 (H, W) kinds."""
    spatial = np.stack([(maps >> bit) & 1 for bit in range(SPATIAL_BITS)]).astype(np.float32)
    return spatial, (maps >> SPATIAL_BITS).astype(np.int64)


class Pack:
    """An open pack: ``example_arrays(row)`` → image (float32), spatial, kinds, labels (or None)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.index = json.loads((folder / "index.json").read_text())
        self.images, self.maps = Rows(folder / "images.npy"), Rows(folder / "maps.npy")
        self.labels = Rows(folder / "labels.npy") if (folder / "labels.npy").is_file() else None

    def example_arrays(self, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        spatial, kinds = decode_maps(self.maps.read(row))
        labels = self.labels.read(row).astype(np.int64) if self.labels is not None else None
        return self.images.read(row).astype(np.float32), spatial, kinds, labels


def open_pack(root: str | Path, size: int, labels: bool = False) -> Pack | None:
    """The pack of ``root`` at ``size``, or ``None`` when there is none or it was made from another manifest."""
    folder = pack_dir(root, size, labels)
    try:
        pack = Pack(folder)
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    if pack.index.get("manifest_sha256") != manifest_digest(root) or pack.index.get("size") != size:
        return None
    return pack


def pack(
    root: str | Path,
    size: int,
    labels: bool = False,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Decode every image of the prepared dataset ``root`` (all splits, manifest order) at ``size`` pixels
    into a pack beside its manifest; ``workers`` processes decode in parallel. Returns the pack's folder
    (written whole or not at all)."""
    import torch

    from mammosynth.training.data import PreparedImages

    data = PreparedImages(root, size, split=None, cache=False, labels=labels, use_pack=False)
    n = len(data)
    digest = manifest_digest(root)
    loader = torch.utils.data.DataLoader(
        data, batch_size=None, shuffle=False, num_workers=workers, collate_fn=lambda item: item
    )
    with atomic_output_dir(pack_dir(root, size, labels), overwrite=True) as tmp:
        shape = (n, size, size)
        images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.float16, shape=shape)
        maps = np.lib.format.open_memmap(tmp / "maps.npy", mode="w+", dtype=np.uint8, shape=shape)
        label_rows = (
            np.lib.format.open_memmap(tmp / "labels.npy", mode="w+", dtype=np.uint8, shape=shape) if labels else None
        )
        for done, (row, example) in enumerate(loader, start=1):
            images[row] = example.image
            maps[row] = encode_maps(example.spatial, example.kinds)
            if label_rows is not None:
                label_rows[row] = example.labels
            if progress:
                progress(done, n)
        for array in (images, maps, label_rows):
            if array is not None:
                array.flush()
        del images, maps, label_rows
        (tmp / "index.json").write_text(json.dumps({"manifest_sha256": digest, "size": size, "images": n}))
    return pack_dir(root, size, labels)
