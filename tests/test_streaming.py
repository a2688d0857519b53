"""Streaming data: a pack holds what the PNG reader decodes, training from it with DataLoader workers sees
the batches a cached in-process run sees (same losses, bit for bit), resumes exactly, and a pack of another
manifest is not used."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from factories import prepared_phantoms
from mammosynth import api
from mammosynth.errors import InputError
from mammosynth.training.data import PreparedImages
from mammosynth.training.packed import decode_maps, encode_maps, open_pack, pack_dir


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return prepared_phantoms(tmp_path_factory.mktemp("stream"), ("none", "malignant-mass"), n=5, size=64, seed=9)


def losses(run) -> list[dict]:
    return [json.loads(line) for line in (run / "losses.jsonl").read_text().splitlines()]


def test_maps_round_trip():
    rng = np.random.default_rng(0)
    spatial = (rng.random((3, 8, 8)) > 0.5).astype(np.float32)
    kinds = rng.integers(0, 5, (8, 8))
    back_spatial, back_kinds = decode_maps(encode_maps(spatial, kinds))
    assert np.array_equal(back_spatial, spatial) and np.array_equal(back_kinds, kinds)


def test_a_pack_holds_what_the_png_reader_decodes(tmp_path, data):
    copy = tmp_path / "d"
    shutil.copytree(data, copy)
    result = api.pack(copy, size=32, labels=True, workers=2)
    assert result["images"] == 10 and result["size"] == 32
    assert not any(p.name.endswith(".partial") for p in copy.iterdir())
    index = json.loads((pack_dir(copy, 32, True) / "index.json").read_text())
    assert set(index) == {"manifest_sha256", "size", "images"}  # no paths, no identifiers
    packed = PreparedImages(copy, 32, labels=True)
    decoded = PreparedImages(copy, 32, labels=True, use_pack=False, cache=False)
    assert packed.pack is not None and packed.cache is None  # flat RAM: nothing kept
    assert len(packed) == len(decoded) < 10  # the train split only, mapped onto the pack's rows
    for i in range(len(packed)):
        a, b = packed.example(i), decoded.example(i)
        assert np.array_equal(a.image, b.image)
        assert np.array_equal(a.spatial, b.spatial) and np.array_equal(a.kinds, b.kinds)
        assert np.array_equal(a.labels, b.labels) and a.conditions == b.conditions
    assert packed.example(0).spatial.sum() > 0 and packed.example(0).labels.max() > 0
    # a changed manifest makes the pack stale: it is not used
    manifest = copy / "manifest.jsonl"
    manifest.write_text(manifest.read_text() + "\n")
    assert open_pack(copy, 32, True) is None


def test_workers_from_a_pack_train_what_the_cached_reader_trains_and_resume_exactly(tmp_path, data):
    copy = tmp_path / "d"
    shutil.copytree(data, copy)
    common = ["train.batch_size=4", "train.log_every=1", "train.checkpoint_every=3"]
    api.train(copy, tmp_path / "memory", model="gan", config="tiny", set=[*common, "train.steps=6"])
    api.pack(copy, size=32)  # the tiny GAN's size
    assert PreparedImages(copy, 32).pack is not None
    streamed = [*common, "train.workers=2"]
    api.train(copy, tmp_path / "stream", model="gan", config="tiny", set=[*streamed, "train.steps=3"])
    api.train(copy, tmp_path / "stream", model="gan", config="tiny", set=[*streamed, "train.steps=6"], resume=True)
    assert losses(tmp_path / "stream") == losses(tmp_path / "memory")


def test_bad_pack_arguments_are_one_line(tmp_path, data):
    with pytest.raises(InputError, match="--workers"):
        api.pack(data, workers=-1)
    with pytest.raises(InputError, match="--size"):
        api.pack(data, size=3)
    with pytest.raises(InputError, match="manifest"):
        api.pack(tmp_path)
    with pytest.raises(InputError, match=r"train\.workers"):
        api.train(data, tmp_path / "r", model="gan", config="tiny", set=["train.workers=-2"])
