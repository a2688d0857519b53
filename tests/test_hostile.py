"""Hostile input to every command: each bad value gets one ``error:`` line naming the file or flag, exit 2,
and nothing half-written (issue 18's list). The CLI runs in-process (``mammosynth.cli.main``) so the many
cases cost milliseconds, not a Python start each."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from mammosynth.cli import main
from mammosynth.io.images import write_png
from mammosynth.phantom import make_phantom_dataset


def run_cli(capsys, *args: str) -> tuple[int, str]:
    """Exit code and stderr of ``mammosynth ARGS`` run in this process."""
    saved = sys.argv
    sys.argv = ["mammosynth", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = saved
    return code, capsys.readouterr().err


def refused(capsys, *args: str, says: str, out: Path | None = None) -> str:
    code, err = run_cli(capsys, *args)
    lines = [line for line in err.splitlines() if line.startswith("error:")]  # progress bars aside
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err and says in lines[0], err
    if out is not None:
        assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))
    return lines[0]


def prepare_refused(capsys, images: Path, tmp_path: Path, says: str) -> None:
    """``prepare IMAGES --mapping tmp_path/map.yaml`` is refused in one line and writes nothing."""
    out = tmp_path / "o"
    refused(capsys, "prepare", images, "--mapping", tmp_path / "map.yaml", "--out", out, says=says, out=out)


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("h") / "data"
    make_phantom_dataset(folder, n=6, size=32, seed=2)
    return folder


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("train: {steps: .inf}", "train.steps must be a finite number, got inf"),
        ("train: {steps: 10, lr: -0.001}", "train.lr must be at least 0 and at most 10, got -0.001"),
        ("train: {steps: 10, lr: .nan}", "train.lr must be a finite number"),
        ("train: {steps: 10, sample_every: 0}", "train.sample_every must be at least 1"),
        ("train: {steps: 10, batch_size: 100000}", "train.batch_size must be at least 1 and at most 65536"),
        ("train: {steps: 10, batch_size: 60000}", "60000 images of 32 px need about 188.7 GB at once"),
        ("model: [1, 2]\ntrain: {steps: 10}", "model: must be a mapping"),
        ("train: {steps: 10, betas: [0.5]}", "train.betas must be two numbers"),
        ("train: {steps: 10, ema_decay: 1.5}", "train.ema_decay must be"),
    ],
)
def test_bad_config_values_are_one_line_and_leave_no_run_folder(capsys, phantoms, tmp_path, monkeypatch, text, says):
    monkeypatch.setattr("mammosynth.training.device.available_bytes", lambda device: 20 * 10**9)
    out = tmp_path / "run"
    refused(
        capsys,
        "train",
        phantoms,
        "--out",
        out,
        "--model",
        "gan",
        "--config",
        config(tmp_path, "model: {image_size: 32, g_channels: [16, 8, 8], d_channels: [8, 8, 16]}\n" + text)
        if not text.startswith("model")
        else config(tmp_path, text),
        says=says,
        out=out,
    )


def test_tampered_run_state_is_one_line(capsys, phantoms, tmp_path):
    run = tmp_path / "run"
    code, err = run_cli(
        capsys, "train", phantoms, "--out", run, "--model", "gan", "--config", "tiny", "--set", "train.steps=2"
    )
    assert code == 0, err
    state = next(run.glob("checkpoints/step-*")) / "state.json"
    for tampered in ({"step": "two"}, {"elapsed_s": "soon"}, {"step": -5}, [], {"plan": 3}):
        original = json.loads(state.read_text())
        state.write_text(json.dumps(tampered if isinstance(tampered, list) else {**original, **tampered}))
        refused(
            capsys, "train", phantoms, "--out", run, "--model", "gan", "--config", "tiny", "--resume", says="state.json"
        )
        state.write_text(json.dumps(original))


def test_bad_phantom_flags_and_parameters(capsys, tmp_path):
    out = tmp_path / "p"
    refused(capsys, "phantom", "--out", out, "--colorset", "3", says="--colorset")
    refused(capsys, "phantom", "--out", out, "--size", "7", says="--size")
    refused(capsys, "phantom", "--out", out, "--n", "0", says="--n", out=out)
    refused(capsys, "phantom", "--out", out, "--n", "10000001", says="--n", out=out)
    params = tmp_path / "params.json"
    for bad, says in (
        ({"outline": {"a": "wide"}}, "outline.a must be a number"),
        ({"skin_mm": -1}, "skin_mm must be at least 0"),
        ({"masses": [{"size_mm": float("nan")}]}, "masses[0].size_mm must be a finite number"),
        ([1, 2], "must be an object"),
    ):
        params.write_text(json.dumps(bad))
        line = refused(capsys, "phantom", "--out", out, "--params", params, says=says, out=out)
        assert str(params) in line


def test_output_paths_that_cannot_be_written(capsys, phantoms, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    refused(capsys, "phantom", "--out", blocker / "sub", "--n", "2", says="is a file")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            refused(capsys, "phantom", "--out", locked / "p", "--n", "2", says="cannot write")
        finally:
            locked.chmod(0o700)


def test_bad_manifest_lines_and_mapping_values(capsys, phantoms, tmp_path):
    import shutil

    data = tmp_path / "d"
    shutil.copytree(phantoms, data)
    manifest = data / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    for bad, says in (
        ("[1, 2]", "must be a JSON object"),
        ('"text"', "must be a JSON object"),
        (json.dumps({**json.loads(lines[0]), "path": "/etc/passwd"}), "outside the dataset folder"),
        (json.dumps({**json.loads(lines[0]), "path": "../../x.png"}), "outside the dataset folder"),
        (json.dumps({**json.loads(lines[0]), "findings": "mass"}), "findings"),
    ):
        manifest.write_text("\n".join([bad, *lines[1:]]) + "\n")
        line = refused(capsys, "datasets", "inspect", data, says=says)
        assert "manifest.jsonl:1" in line, line
    manifest.write_text("\n".join(lines) + "\n")
    images = tmp_path / "g"
    write_png(images / "a.png", np.zeros((16, 16), np.float32))
    (images / "meta.csv").write_text("file,density\na.png,B\n")
    for mapping, says in (
        ("csv: meta.csv\ncolumns: [path, file]\n", "columns"),
        ("csv: [meta.csv]\ncolumns: {path: file}\n", "csv"),
        ("csv: ../../../etc/passwd\ncolumns: {path: file}\n", "outside"),
        ("csv: meta.csv\ncolumns: {path: file}\nvalues: {density: 3}\n", "values"),
    ):
        (tmp_path / "map.yaml").write_text(mapping)
        prepare_refused(capsys, images, tmp_path, says)


def test_no_source_folder_or_file_name_reaches_an_output(tmp_path):
    """A folder named after a patient, a corrupt file skipped with --skip-bad, a config file in a folder
    named after its user: none of those names is written into any file of prepare, train or generate."""
    from mammosynth import api

    source = tmp_path / "Jane_Doe_1970"
    make_phantom_dataset(tmp_path / "ph", n=8, size=64, seed=3)
    source.mkdir()
    for k, image in enumerate(sorted((tmp_path / "ph" / "images").glob("*.png"))):
        (source / f"Jane_Doe_scan_{k}.png").write_bytes(image.read_bytes())
    (source / "Jane_Doe_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    prepared = tmp_path / "prepared"
    result = api.prepare(source, prepared, size=64, skip_bad=True)
    assert result["images"] == 8 and len(result["skipped"]) == 1  # the console still names it for the user
    settings = tmp_path / "Jane_Doe_settings"
    settings.mkdir()
    (settings / "gan.yaml").write_text((Path(api.__file__).parent / "configs" / "gan" / "tiny.yaml").read_text())
    api.train(prepared, tmp_path / "run", model="gan", config=settings / "gan.yaml", set=["train.steps=2"])
    api.generate(tmp_path / "run", tmp_path / "gen", n=2, model="gan")
    named = tmp_path / "named"
    api.prepare(source, named, size=64, skip_bad=True, dataset_name="site-A")
    assert {r.dataset for r in __import__("mammosynth").datasets.load_dataset(named).records} == {"site-A"}
    for folder in (prepared, tmp_path / "run", tmp_path / "gen", named):
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix in (".json", ".jsonl", ".csv", ".md", ".txt", ".yaml", ".html"):
                assert "Jane_Doe" not in path.read_text(errors="ignore"), path


def test_damaged_headers_file_names_and_csv_paths(capsys, tmp_path):
    import pydicom

    from mammosynth.io.dicom import write_dicom

    folder = tmp_path / "dcm"
    write_dicom(folder / "a.dcm", np.full((32, 32), 0.5, np.float32), view="CC", laterality="L")
    ds = pydicom.dcmread(folder / "a.dcm")
    ds.WindowCenter, ds.WindowWidth = 100, 0
    ds.save_as(folder / "a.dcm")
    refused(capsys, "prepare", folder, "--out", tmp_path / "o", says="WindowWidth (0028,1051) must be at least 1")
    odd = tmp_path / "odd"
    odd.mkdir()
    name = os.fsencode(odd) + b"/scan-\xff\xfe.png"  # not UTF-8
    write_png(tmp_path / "x.png", np.zeros((16, 16), np.float32))
    with open(name, "wb") as handle:
        handle.write((tmp_path / "x.png").read_bytes())
    code, err = run_cli(capsys, "datasets", "inspect", odd)
    assert code in (0, 2) and "Traceback" not in err, err
    images = tmp_path / "g"
    write_png(images / "a.png", np.zeros((16, 16), np.float32))
    (images / "meta.csv").write_text("file\na\x00.png\n")
    (tmp_path / "map.yaml").write_text("csv: meta.csv\ncolumns: {path: file}\n")
    refused(capsys, "prepare", images, "--mapping", tmp_path / "map.yaml", "--out", tmp_path / "o2", says="meta.csv")


def test_a_full_disk_is_one_line_and_leaves_nothing(capsys, tmp_path, monkeypatch):
    import errno

    from mammosynth.io import images

    real = images.write_png

    def full(path, *args, **kwargs):
        if "phantom000003" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(images, "write_png", full)
    monkeypatch.setattr("mammosynth.phantom.dataset.write_png", full, raising=False)
    out = tmp_path / "p"
    line = refused(capsys, "phantom", "--out", out, "--n", "6", "--size", "32", says="No space left on device", out=out)
    assert f"{out}/images/phantom000003.png" in line
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".p.")]  # no hidden partial folder either


def test_expand_on_a_corrupt_image_and_a_stale_partial_folder(tmp_path):
    """expand: a corrupt source image is one line and leaves no plan.json or records/; a hidden partial
    folder a killed run left (its process gone) is removed by the next run into the same place."""
    import shutil

    from mammosynth import api
    from mammosynth.errors import InputError

    make_phantom_dataset(tmp_path / "data", n=8, size=32, seed=4, lesion="malignant-mass")
    api.train(tmp_path / "data", tmp_path / "gan", model="gan", config="tiny", set=["train.steps=2"])
    broken = tmp_path / "broken"
    shutil.copytree(tmp_path / "data", broken)
    victim = sorted((broken / "images").glob("*.png"))[2]
    victim.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(InputError, match=victim.name):
        api.expand(broken, tmp_path / "x", tmp_path / "gan", target="balanced", steps=2)
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
    dead = tmp_path / ".ph.999999999.abc.partial"  # no process has this id
    dead.mkdir()
    live = tmp_path / f".ph.{os.getpid()}.abc.partial"  # this process's: not touched
    live.mkdir()
    api.phantom(tmp_path / "ph", n=2, size=32)
    assert not dead.exists() and live.exists()


@pytest.fixture(scope="module")
def gan(phantoms, tmp_path_factory) -> Path:
    from mammosynth import api

    run = tmp_path_factory.mktemp("gan") / "run"
    api.train(phantoms, run, model="gan", config="tiny", set=["train.steps=2"])
    return run


def test_values_that_were_accepted_silently(capsys, phantoms, gan, tmp_path, monkeypatch):
    out = tmp_path / "g"
    monkeypatch.setattr("mammosynth.training.device.available_bytes", lambda device: 20 * 10**9)
    refused(capsys, "generate", gan, "--out", out, "--n", "30000", "--batch-size", "30000", says="need about")
    common = ("generate", gan, "--out", out, "--n", "2")
    refused(capsys, *common, "--lesion", "none", "--lesion-size-mm", "12", says="describes a lesion", out=out)
    refused(capsys, *common, "--sampler", "euler-magic", says="unknown sampler 'euler-magic'", out=out)
    refused(capsys, "generate", gan, "--out", out, "--n", "2000000", says="--n", out=out)
    refused(capsys, *common, "--batch-size", "0", says="--batch-size", out=out)
    table = tmp_path / "conditions.csv"
    table.write_text("view,count\nCC,5000000\n")  # refused before 5 million rows are built
    refused(capsys, "generate", gan, "--out", out, "--conditions", table, says="count 5000000", out=out)
    refused(
        capsys,
        "evaluate",
        phantoms,
        phantoms,
        "--out",
        tmp_path / "e",
        "--c2st-steps",
        "-5",
        says="--c2st-steps",
        out=tmp_path / "e",
    )
    refused(
        capsys,
        "inpaint",
        phantoms / "images" / "x.png",
        "--mask",
        "m.png",
        "--model",
        gan,
        "--out",
        tmp_path / "i.png",
        "--lesion",
        "malignant-mass",
        "--grow-px",
        "-1",
        says="--grow-px: must be 0–64",
    )
    assert not (tmp_path / "i.png").exists()


def test_nan_weights_a_pgm_past_its_maxval_and_an_unknown_view(capsys, gan, tmp_path):
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from mammosynth.errors import InputError
    from mammosynth.io.images import read_image

    broken = tmp_path / "run"
    shutil.copytree(gan, broken)
    weights = next(broken.glob("checkpoints/step-*")) / "weights.safetensors"
    tensors = load_file(weights)
    name = next(k for k in tensors if k.startswith("ema/gan/generator.") and tensors[k].is_floating_point())
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, weights)
    refused(capsys, "generate", broken, "--out", tmp_path / "g", "--n", "2", says="NaN or infinite", out=tmp_path / "g")
    pgm = tmp_path / "a.pgm"
    pgm.write_bytes(b"P5\n16 16\n100\n" + bytes([200] * 256))
    with pytest.raises(InputError, match="pixel value 200 above the header's maxval 100"):
        read_image(pgm)
    images = tmp_path / "v"
    write_png(images / "a.png", np.zeros((16, 16), np.float32))
    (images / "meta.csv").write_text("file,view\na.png,CCX\n")
    (tmp_path / "map.yaml").write_text("csv: meta.csv\ncolumns: {path: file, view: view}\n")
    prepare_refused(capsys, images, tmp_path, "unknown view 'CCX'")


def test_importing_the_api_leaves_the_matplotlib_backend_alone():
    import subprocess

    code = (
        "import matplotlib; matplotlib.use('svg'); import mammosynth.api, mammosynth.contact_sheet; "
        "print(matplotlib.get_backend())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "svg", result.stderr


def test_a_missing_extra_is_one_line_and_training_runs_without_tensorboard(phantoms, tmp_path, monkeypatch):
    import subprocess

    from mammosynth import api

    blocker = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('fastapi', 'uvicorn'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "sys.argv = ['mammosynth', 'serve', '--folder', sys.argv[1]]\n"
        "from mammosynth.cli import main\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", blocker, str(tmp_path / "app")], capture_output=True, text=True)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "needs the app extra (fastapi is missing): pip install 'mammosynth[app]'" in lines[0]
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as without the extra
    api.train(phantoms, tmp_path / "run", model="gan", config="tiny", set=["train.steps=3"])
    assert not (tmp_path / "run" / "tensorboard").exists()
    assert len((tmp_path / "run" / "losses.jsonl").read_text().splitlines()) == 3
