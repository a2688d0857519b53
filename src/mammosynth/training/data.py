"""Training data: a prepared dataset (real or phantom) as tensors, and a batch order that is a pure
function of (seed, step) so that a resumed run sees exactly the batches the uninterrupted run would."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mammosynth.datasets.schema import Record, iter_manifest
from mammosynth.errors import InputError
from mammosynth.io.images import read_image
from mammosynth.models.conditioning import conditions_from_record, encode_conditions, spatial_from_masks
from mammosynth.models.verifier import KINDS, kind_of
from mammosynth.phantom.derive import derive_label_map
from mammosynth.preprocess.resize import resize_image, resize_mask
from mammosynth.preprocess.segment import breast_mask


@dataclass
class Example:
    image: np.ndarray  # (H, W) float32 in [0, 1]
    spatial: np.ndarray  # (3, H, W) breast, pectoral, lesion
    kinds: np.ndarray  # (H, W) int64 verifier kind per pixel
    conditions: dict
    labels: np.ndarray | None = None  # (H, W) parametric-model classes derived from the image


#: Field of view assumed when a record has no pixel spacing (a 24 cm detector edge).
DEFAULT_FIELD_MM = 240.0


class PreparedImages:
    """Images, spatial maps and conditions of a prepared dataset folder, resized to ``size`` if needed.

    Uses the ``train`` split when the manifest has splits. Examples are read from the dataset's pack at
    ``size`` when there is a current one (:mod:`mammosynth.training.packed`, ``use_pack``), else decoded from
    the PNGs; with ``cache`` they are kept in memory after the first read (uint8 masks, float16 images: about
    390 MB per 2,000 images at 256 px); without it RAM stays flat in the dataset's size. ``cache=None``
    caches unless there is a pack. With ``labels`` every
    example also carries the label map derived from its image and masks (the translator's input).

    As a map-style dataset (``data[i]`` → ``(i, Example)``, never cached: a worker's cache would be private
    to it) it feeds a ``torch.utils.data.DataLoader`` whose ``collate_fn`` is :meth:`collate`.
    """

    def __init__(
        self,
        root: str | Path,
        size: int,
        split: str | None = "train",
        cache: bool | None = None,
        labels: bool = False,
        use_pack: bool = True,
    ) -> None:
        from mammosynth.training.packed import open_pack

        self.root = Path(root)
        records = list(iter_manifest(self.root))
        rows = list(range(len(records)))  # each record's row in the manifest (and in a pack)
        if split and any(r.split for r in records):
            rows = [i for i in rows if records[i].split == split]
        if not rows:
            raise InputError(self.root, f"no images to train on (split {split!r})")
        kept = [records[i] for i in rows]
        self.rows = rows
        self.size = size
        self.labels = labels
        self._summary = self._describe(kept)
        self.pack = open_pack(self.root, size, labels) if use_pack else None
        # with a pack only the conditions are kept (a record's paths and preparation notes are 4 kB each), and
        # equal conditions are one shared dict (most images share theirs; a dict each was 5 kB per image)
        shared: dict[str, dict] = {}
        self.conditions = [
            shared.setdefault(json.dumps(c, sort_keys=True, default=str), c)
            for c in (conditions_from_record(r) for r in kept)
        ]
        self.records: list[Record] = kept if self.pack is None else []
        if cache is None:  # a pack is read cheaply (and its RAM stays flat); PNGs are decoded once and kept
            cache = self.pack is None
        self.cache: dict[int, tuple] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.rows)

    def _describe(self, records: list[Record]) -> dict:
        spacings = [r.spacing_mm * (r.width or self.size) / self.size for r in records if r.spacing_mm]
        return {
            "dataset": sorted({r.dataset for r in records}),
            "images": len(records),
            "image_size": self.size,
            "spacing_mm": round(statistics.median(spacings), 4) if spacings else None,
            "labels": dict(Counter(r.label for r in records)),
            "views": dict(Counter(str(r.view) for r in records)),
        }

    def summary(self) -> dict:
        """What the model was trained on (stored in checkpoints; no identifiers)."""
        return dict(self._summary)

    def _load(self, index: int) -> Example:
        if self.pack is not None:
            image, spatial, kinds, labels = self.pack.example_arrays(self.rows[index])
            return Example(image, spatial, kinds, self.conditions[index], labels)
        record = self.records[index]
        path = self.root / record.path
        image = read_image(path).pixels
        shape = image.shape
        if shape != (self.size, self.size):
            if shape[0] != shape[1]:
                raise InputError(path, f"image is {shape[1]}×{shape[0]}; train on a prepared (square) dataset")
            image = resize_image(image, self.size, self.size)

        def mask(rel: str | None) -> np.ndarray | None:
            if not rel or not (self.root / rel).is_file():
                return None
            m = read_image(self.root / rel).pixels > 0.5
            return resize_mask(m, self.size, self.size) if m.shape != (self.size, self.size) else m

        kinds = np.zeros((self.size, self.size), dtype=np.int64)
        lesion = np.zeros((self.size, self.size), dtype=bool)
        lesions = []
        for finding in record.findings:
            m = mask(finding.mask_path)
            if m is not None:
                kind = kind_of(finding.category, finding.pathology)
                kinds[m & (kinds == 0)] = KINDS.index(kind)
                lesion |= m
                lesions.append((m, kind))
        breast, pectoral = mask(record.extra.get("breast_mask")), mask(record.extra.get("pectoral_mask"))
        spatial = spatial_from_masks(breast, pectoral, lesion, (self.size, self.size))
        labels = None
        if self.labels:
            if breast is None:
                breast = breast_mask(image)
            spacing = (
                record.spacing_mm * (record.width or self.size) / self.size
                if record.spacing_mm
                else DEFAULT_FIELD_MM / self.size
            )
            labels = derive_label_map(
                image, breast if breast is not None else np.ones_like(lesion), spacing, pectoral, lesions
            )
        # float16 precision on every path (cache, pack, workers): the batches do not depend on how they were read
        image = image.astype(np.float16).astype(np.float32)
        return Example(image, spatial, kinds, self.conditions[index], labels)

    def example(self, index: int) -> Example:
        if self.cache is None:
            return self._load(index)
        if index not in self.cache:
            ex = self._load(index)
            self.cache[index] = (
                ex.image.astype(np.float16),
                ex.spatial.astype(np.uint8),
                ex.kinds.astype(np.uint8),
                ex.conditions,
                ex.labels,
            )
        image, spatial, kinds, conditions, labels = self.cache[index]
        return Example(image.astype(np.float32), spatial.astype(np.float32), kinds.astype(np.int64), conditions, labels)

    def __getitem__(self, index: int) -> tuple[int, Example]:
        return index, self._load(index)

    def batch(self, indices: list[int]) -> dict:
        """Collate examples into tensors: image (N,1,H,W), spatial (N,3,H,W), kinds (N,H,W), conditions."""
        return self.collate([(i, self.example(i)) for i in indices])

    def collate(self, items: list[tuple[int, Example]]) -> dict:
        """:meth:`batch` of examples already read (a DataLoader's ``collate_fn``)."""
        indices = [i for i, _ in items]
        examples = [e for _, e in items]
        encoded = encode_conditions([e.conditions for e in examples])
        labels = [e.labels for e in examples] if self.labels else []
        return {
            **({"labels": torch.from_numpy(np.stack(labels).astype(np.int64))} if labels else {}),
            "image": torch.from_numpy(np.stack([e.image for e in examples]))[:, None],
            "spatial": torch.from_numpy(np.stack([e.spatial for e in examples])),
            "kinds": torch.from_numpy(np.stack([e.kinds for e in examples])),
            "categorical": encoded["categorical"],
            "continuous": encoded["continuous"],
            "indices": list(indices),
        }


class BatchOrder:
    """Which examples make micro-batch ``micro`` of optimiser step ``step``: epochs are permutations drawn
    from ``(seed, epoch)``; nothing depends on how many steps ran before in this process.

    Example:
        >>> order = BatchOrder(n=10, batch_size=4, accumulate=1, seed=0)
        >>> order.indices(3, 0) == BatchOrder(10, 4, 1, 0).indices(3, 0)
        True
        >>> sorted(order.indices(0, 0) + order.indices(1, 0) + order.indices(2, 0)[:2])
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        >>> halves = [BatchOrder(10, 4, 1, 0, rank=r, world=2).indices(3, 0) for r in (0, 1)]
        >>> halves[0] + halves[1] == order.indices(3, 0)  # two processes take the same global batch
        True
    """

    def __init__(self, n: int, batch_size: int, accumulate: int, seed: int, rank: int = 0, world: int = 1) -> None:
        if batch_size % world:
            raise InputError("train.batch_size", f"the global batch {batch_size} does not split among {world} ranks")
        self.n, self.batch_size, self.accumulate, self.seed = n, batch_size, accumulate, seed
        self.rank, self.world = rank, world
        self._permutations: dict[int, torch.Tensor] = {}

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch not in self._permutations:
            if len(self._permutations) > 4:
                self._permutations.clear()
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._permutations[epoch] = torch.randperm(self.n, generator=generator)
        return self._permutations[epoch]

    def indices(self, step: int, micro: int) -> list[int]:
        """This rank's share of micro-batch ``micro`` of step ``step``: ``batch_size`` is the global batch,
        cut into ``world`` equal parts, so the examples of a step do not depend on how many processes run it
        (a run resumes on another number of processes with the same data order)."""
        share = self.batch_size // self.world
        start = (step * self.accumulate + micro) * self.batch_size + self.rank * share
        out = []
        for position in range(start, start + share):
            out.append(int(self._permutation(position // self.n)[position % self.n]))
        return out


class StepSampler:
    """The micro-batches of steps ``start`` … ``stop - 1`` in order, as index lists: a DataLoader's
    ``batch_sampler`` that keeps :class:`BatchOrder` (and so exact resume) with any number of workers.

    Example:
        >>> order = BatchOrder(10, 4, 2, seed=0)
        >>> list(StepSampler(order, 3, 4)) == [order.indices(3, 0), order.indices(3, 1)]
        True
    """

    def __init__(self, order: BatchOrder, start: int, stop: int) -> None:
        self.order, self.start, self.stop = order, start, stop

    def __len__(self) -> int:
        return max(0, self.stop - self.start) * self.order.accumulate

    def __iter__(self):
        for step in range(self.start, self.stop):
            for micro in range(self.order.accumulate):
                yield self.order.indices(step, micro)


def loader(data: PreparedImages, sampler: StepSampler, workers: int, pin_memory: bool = False):
    """A DataLoader of ``workers`` processes delivering ``sampler``'s micro-batches in order.

    Python objects shared with forked workers are frozen first (``gc.freeze``, as the Python documentation
    advises before ``fork``): otherwise each worker's garbage collector writes into every object header it
    visits, the pages holding the manifest's records are copied into every worker, and RAM grows with the
    dataset after all."""
    import gc

    gc.collect()
    gc.freeze()
    return torch.utils.data.DataLoader(
        data,
        batch_sampler=sampler,
        num_workers=workers,
        collate_fn=data.collate,
        pin_memory=pin_memory,
        prefetch_factor=2,
    )
