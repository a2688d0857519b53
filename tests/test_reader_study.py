"""Reader-study analysis on scripted answers whose numbers are worked out by hand (issue 7, analysis part)."""

from __future__ import annotations

import pytest

from mammosynth.errors import InputError
from mammosynth.evaluate.reader_study import analyse_reads, fleiss_kappa

TRUTH = {"r1": False, "r2": False, "r3": False, "s1": True, "s2": True, "s3": True}


def scripted() -> list[dict]:
    answers = []
    for image, synthetic in TRUTH.items():
        truth, opposite = ("synthetic", "real") if synthetic else ("real", "synthetic")
        answers.append({"reader": "expert", "image": image, "answer": truth, "confidence": 5})
        answers.append({"reader": "trusting", "image": image, "answer": "real", "confidence": 3})
        answers.append({"reader": "contrary", "image": image, "answer": opposite, "confidence": 2})
    return answers


def test_per_reader_numbers_match_the_hand_computed_ones():
    found = analyse_reads(scripted(), TRUTH)
    expert, trusting, contrary = (found["readers"][r] for r in ("expert", "trusting", "contrary"))
    assert (expert["accuracy"], expert["sensitivity"], expert["specificity"], expert["auc"]) == (1.0, 1.0, 1.0, 1.0)
    assert expert["binomial_p"] == pytest.approx(2 * 0.5**6)
    assert (trusting["accuracy"], trusting["sensitivity"], trusting["specificity"]) == (0.5, 0.0, 1.0)
    assert trusting["auc"] == 0.5 and trusting["binomial_p"] == pytest.approx(1.0)
    assert (contrary["accuracy"], contrary["auc"]) == (0.0, 0.0)
    assert found["pooled"]["correct"] == 6 + 3 + 0 and found["pooled"]["answers"] == 18


def test_agreement_and_fooled_rates():
    found = analyse_reads(scripted(), TRUTH)
    # every image gets two answers one way and one the other: P = 1/3, Pe = (2/3)² + (1/3)² = 5/9
    assert found["fleiss_kappa"] == pytest.approx((1 / 3 - 5 / 9) / (1 - 5 / 9))
    rates = {i["image"]: i["fooled_rate"] for i in found["images"]}
    assert rates == pytest.approx({"r1": 1 / 3, "r2": 1 / 3, "r3": 1 / 3, "s1": 2 / 3, "s2": 2 / 3, "s3": 2 / 3})
    assert found["synthetic_most_taken_for_real"] == ["s1", "s2", "s3"]
    assert found["images_rated_by_all"] == 6
    assert fleiss_kappa([[3, 0], [0, 3], [3, 0]]) == 1.0


def test_bad_answers_are_refused():
    with pytest.raises(InputError, match="no answers"):
        analyse_reads([], TRUTH)
    with pytest.raises(InputError, match="unknown image 'x'"):
        analyse_reads([{"reader": "a", "image": "x", "answer": "real", "confidence": 1}], TRUTH)
    with pytest.raises(InputError, match="'maybe' is not one of"):
        analyse_reads([{"reader": "a", "image": "r1", "answer": "maybe", "confidence": 1}], TRUTH)
    with pytest.raises(InputError, match="same number"):
        fleiss_kappa([[2, 1], [1, 1]])


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    from mammosynth.datasets import iter_manifest, write_manifest
    from mammosynth.phantom import make_phantom_dataset

    root = tmp_path_factory.mktemp("study")
    make_phantom_dataset(root / "real", n=5, size=64, seed=1)
    make_phantom_dataset(root / "real96", n=5, size=96, seed=1)
    # an expanded-like folder: 4 images marked synthetic beside 3 real ones it started from
    make_phantom_dataset(root / "synthetic", n=7, size=64, seed=2)
    records = list(iter_manifest(root / "synthetic"))
    for record in records[:4]:
        record.extra = {**record.extra, "synthetic": True}
    write_manifest(root / "synthetic", records)
    return root


def test_a_study_is_blinded_balanced_and_needs_tokens(sets, tmp_path):
    import struct

    from mammosynth.app import StudyStore

    store = StudyStore(tmp_path / "app")
    made = store.create_study("pilot", sets / "real", sets / "synthetic", per_class=3, readers=["ann", "bob"], size=64)
    assert made["images"] == 6 and made["per_class"] == 3
    ann = made["reader_tokens"]["ann"]
    state = store.reader_state(ann)
    assert state == {"study": "pilot", "reader": "ann", "answered": 0, "total": 6, "next": state["next"]}
    headers = set()
    for image in store.image_order_for_tests(ann):
        data = store.image(ann, image)
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and b"tEXt" not in data and b"iTXt" not in data
        headers.add(struct.unpack(">IIBB", data[16:26]))  # width, height, bit depth, colour type
    assert headers == {(64, 64, 8, 0)}
    with pytest.raises(PermissionError):
        store.reader_state("not-a-token")
    with pytest.raises(PermissionError):
        store.analysis(made["study"], ann)  # a reader token is not the admin token
    other = store.create_study("other", sets / "real", sets / "synthetic", per_class=1, size=64)
    with pytest.raises(PermissionError):
        store.image(ann, store.image_order_for_tests(other["reader_tokens"]["reader-1"])[0])
    assert not list((tmp_path / "app").rglob("*phantom*"))  # no source name on disk
    import sqlite3
    from contextlib import closing

    from mammosynth.datasets import load_dataset

    marked = {f"synthetic:{r.image_id}" for r in load_dataset(sets / "synthetic").records if r.synthetic}
    every = store.create_study("every", sets / "real", sets / "synthetic", per_class=5, size=64)
    with closing(sqlite3.connect(tmp_path / "app" / "studies.sqlite")) as db:
        drawn = [
            source
            for (source,) in db.execute(
                "SELECT source FROM images WHERE synthetic = 1 AND study = ?", (every["study"],)
            )
        ]
    assert sorted(drawn) == sorted(marked)  # only the 4 marked images, not the 3 real ones beside them


def test_a_study_refuses_classes_of_different_native_size(sets, tmp_path):
    from mammosynth.app import StudyStore

    with pytest.raises(InputError, match=r"native size \(real 96×96, synthetic 64×64\); resizing would give"):
        StudyStore(tmp_path / "app").create_study("bad", sets / "real96", sets / "synthetic", per_class=3, size=64)
    assert not list((tmp_path / "app").rglob("*.png"))


def test_answers_count_once_resume_and_survive_a_restart(sets, tmp_path):
    from mammosynth.app import StudyStore

    store = StudyStore(tmp_path / "app")
    made = store.create_study("s", sets / "real", sets / "synthetic", per_class=3, readers=["ann", "bob"], size=64)
    study, admin = made["study"], made["admin_token"]
    truth = store.truth_for_tests(study)
    scripted_answers = []
    for reader, token in made["reader_tokens"].items():
        for step in range(6):
            if reader == "bob" and step == 3:
                break  # bob stops half-way
            image = store.reader_state(token)["next"]
            answer = "synthetic" if (truth[image] if reader == "ann" else step % 2) else "real"
            store.answer(token, image, answer, 4, density="B")
            scripted_answers.append({"reader": reader, "image": image, "answer": answer, "confidence": 4})
    ann, bob = made["reader_tokens"]["ann"], made["reader_tokens"]["bob"]
    with pytest.raises(InputError, match="already answered"):
        store.answer(ann, scripted_answers[0]["image"], "real", 1)
    restarted = StudyStore(tmp_path / "app")  # a new process on the same folder
    assert restarted.reader_state(bob)["answered"] == 3 and restarted.reader_state(ann)["next"] is None
    found = restarted.analysis(study, admin)
    expected = analyse_reads(scripted_answers, truth)
    assert found["readers"] == expected["readers"] and found["pooled"] == expected["pooled"]
    assert found["readers"]["ann"]["accuracy"] == 1.0
    rows = restarted.export_csv(study, admin).splitlines()
    assert len(rows) == 1 + 9 and rows[0].startswith("reader,image,truth,answer")
    with pytest.raises(InputError, match="confidence"):
        restarted.answer(bob, restarted.reader_state(bob)["next"], "real", 9)
