"""Shared training loop, configs and checkpoints, exercised with the tiny latent diffusion config."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from factories import prepared_phantoms
from mammosynth import api
from mammosynth.errors import InputError
from mammosynth.training import PRESETS, load_config, open_checkpoint
from mammosynth.training.checkpoint import WEIGHTS


@pytest.fixture(scope="module")
def phantom_prepared(tmp_path_factory):
    lesions = ("none", "malignant-mass", "benign-mass")
    return prepared_phantoms(tmp_path_factory.mktemp("phantom"), lesions, n=8, size=128, seed=3)


def losses(run) -> list[dict]:
    return [json.loads(line) for line in (run / "losses.jsonl").read_text().splitlines()]


def test_presets_load_for_every_family():
    from importlib import resources

    from mammosynth.families import FAMILIES

    for family in FAMILIES:  # every registered family ships every preset
        files = sorted(p.name[:-5] for p in (resources.files("mammosynth") / "configs" / family).iterdir())
        assert set(PRESETS) <= set(files), family
        for preset in files:
            cfg = load_config(family, preset)
            assert cfg["train"].steps > 0 and cfg["model"].image_size in (32, 64, 128, 256, 512)
            if preset.startswith("cpu-"):  # a CPU preset works at the size its name says
                assert cfg["model"].image_size == int(preset.split("-")[1]), (family, preset)


def test_config_with_unknown_key_is_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  image_size: 32\ntrain:\n  stesp: 10\n")
    with pytest.raises(InputError, match=r"unknown key 'train\.stesp'"):
        load_config("ldm", path)
    with pytest.raises(InputError, match="must be int"):
        load_config("ldm", "tiny", ["train.steps=ten"])
    with pytest.raises(
        InputError,
        match=r"no such config; presets for gan: cpu-128, cpu-32, cpu-64, cpu-64-labels, cpu-64-layout, gpu-256",
    ):
        load_config("gan", "cpu-16")
    with pytest.raises(InputError, match=r"augment_colour must be between 0 and 1, got 2\.0"):
        load_config("gan", "tiny", ["train.augment_colour=2"])


def test_tiny_training_lowers_the_losses(phantom_prepared, tmp_path):
    result = api.train(
        phantom_prepared,
        tmp_path / "run",
        config="tiny",
        set=["train.steps=80", "train.ae_steps=30", "train.checkpoint_every=80"],
    )
    assert result["steps"] == 80
    rows = losses(tmp_path / "run")
    ae = [r["ae_l1"] for r in rows if "ae_l1" in r]
    diffusion = [r["diffusion_loss"] for r in rows if "diffusion_loss" in r]
    assert len(ae) == 30 and len(diffusion) == 50
    assert sum(ae[-5:]) / 5 < 0.5 * sum(ae[:5]) / 5
    assert sum(diffusion[-10:]) / 10 < sum(diffusion[:10]) / 10
    assert (tmp_path / "run" / "samples").is_dir() and any((tmp_path / "run" / "tensorboard").iterdir())


def test_resume_reproduces_the_uninterrupted_losses(phantom_prepared, tmp_path):
    common = ["train.ae_steps=12", "train.adv_start=6", "train.checkpoint_every=5"]
    api.train(phantom_prepared, tmp_path / "full", config="tiny", set=["train.steps=24", *common])
    api.train(phantom_prepared, tmp_path / "cut", config="tiny", set=["train.steps=15", *common])
    resumed = api.train(phantom_prepared, tmp_path / "cut", config="tiny", set=["train.steps=24", *common], resume=True)
    assert resumed["resumed_from"] == 15
    assert losses(tmp_path / "full") == losses(tmp_path / "cut")  # bit-identical, across both stages


def test_resume_after_kill_9_continues_the_same_loss_curve(phantom_prepared, tmp_path):
    args = ["train.steps=400", "train.ae_steps=20", "train.checkpoint_every=10", "train.sample_every=1000"]
    command = [sys.executable, "-m", "mammosynth.cli", "train", str(phantom_prepared), "--out", str(tmp_path / "k")]
    for item in args:
        command += ["--set", item]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "k" / "checkpoints").glob("step-*")):
        time.sleep(0.2)
    time.sleep(0.5)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    checkpoint = open_checkpoint(tmp_path / "k")  # whatever was on disk at the kill is a whole checkpoint
    stop = checkpoint.step + 15
    assert checkpoint.step < 400
    resume = [*command, "--resume"]
    resume[resume.index("train.steps=400")] = f"train.steps={stop}"
    assert subprocess.run(resume, capture_output=True).returncode == 0
    reference = [a.replace("train.steps=400", f"train.steps={stop}") for a in args]
    api.train(phantom_prepared, tmp_path / "ref", config="tiny", set=reference)
    assert losses(tmp_path / "k") == losses(tmp_path / "ref")


def test_a_kill_right_after_a_checkpoint_loses_no_loss_line(phantom_prepared, tmp_path):
    """log_every 3 does not divide checkpoint_every 4: the process dies (os._exit, as kill -9) the moment the
    step-4 checkpoint is written; the resumed run's loss log still has every step exactly once."""
    run = tmp_path / "g"
    script = (
        "import os, sys\n"
        "from mammosynth import api\n"
        "from mammosynth.training.loop import Trainer\n"
        "save = Trainer.save\n"
        "def dying(self):\n"
        "    save(self)\n"
        "    os._exit(9)\n"
        "Trainer.save = dying\n"
        "api.train(sys.argv[1], sys.argv[2], model='gan', config='tiny', "
        "set=['train.steps=8', 'train.log_every=3', 'train.checkpoint_every=4'])\n"
    )
    died = subprocess.run([sys.executable, "-c", script, str(phantom_prepared), str(run)], capture_output=True)
    assert died.returncode == 9, died.stderr.decode()
    assert open_checkpoint(run).step == 4
    common = ["train.steps=8", "train.log_every=3", "train.checkpoint_every=4"]
    api.train(phantom_prepared, run, model="gan", config="tiny", set=common, resume=True)
    assert [r["step"] for r in losses(run)] == list(range(8))


def test_a_time_budget_ends_the_run_with_a_checkpoint_and_holds_over_resumes(phantom_prepared, tmp_path):
    common = ["train.steps=100000", "train.ae_steps=5", "train.checkpoint_every=100000", "train.sample_every=100000"]
    run = tmp_path / "b"
    first = api.train(phantom_prepared, run, config="tiny", set=common, time_budget="2s")
    assert first["stopped_by"] == "time_budget" and 0 < first["steps"] < 100000
    checkpoint = open_checkpoint(run)
    assert checkpoint.step == first["steps"] and checkpoint.state["elapsed_s"] >= 2.0
    again = api.train(phantom_prepared, run, config="tiny", set=common, time_budget="2s", resume=True)
    assert again["steps"] == first["steps"]  # the budget is spent: nothing more to do
    more = api.train(phantom_prepared, run, config="tiny", set=common, time_budget=4, resume=True)
    assert more["steps"] > first["steps"] and more["elapsed_s"] >= 4.0
    assert [r["step"] for r in losses(run)] == list(range(more["steps"]))
    for bad in ("soon", "-5m", "0", "infm"):
        with pytest.raises(InputError, match="--time-budget"):
            api.train(phantom_prepared, tmp_path / "x", config="tiny", time_budget=bad)


def test_under_a_time_budget_the_autoencoder_stage_yields_its_share(phantom_prepared, tmp_path):
    common = ["train.steps=100000", "train.ae_steps=100000", "train.first_stage_share=0.4"]
    common += ["train.checkpoint_every=100000", "train.sample_every=100000"]
    run = tmp_path / "s"
    api.train(phantom_prepared, run, config="tiny", set=common, time_budget=5)
    rows = losses(run)
    switch = open_checkpoint(run).state["plan"]["first_stage_end"]
    assert 0 < switch < len(rows)
    assert all("ae_l1" in r for r in rows[:switch]) and all("diffusion_loss" in r for r in rows[switch:])
    assert (run / "checkpoints" / f"step-{switch:08d}").is_dir()  # a checkpoint at the switch
    more = api.train(phantom_prepared, run, config="tiny", set=common, time_budget=7, resume=True)
    rows = losses(run)
    assert more["steps"] == len(rows) > switch and all("diffusion_loss" in r for r in rows[switch:])


def test_the_learning_rate_decays_linearly_over_the_last_share_of_the_steps(phantom_prepared, tmp_path):
    common = ["train.steps=8", "train.lr_decay_share=0.5", "train.checkpoint_every=1", "train.keep_checkpoints=20"]
    run = tmp_path / "d"
    result = api.train(phantom_prepared, run, model="gan", config="tiny", set=common)
    assert result["steps"] == 8 and result["stopped_by"] == "steps"
    base = {
        name: open_checkpoint(run).state["train"]["lr" if name == "generator" else "lr_discriminator"]
        for name in ("generator", "discriminator")
    }

    def lr_of_step(step: int) -> dict:  # the rate a step trained at: saved by the checkpoint after it
        state = json.loads((run / "checkpoints" / f"step-{step + 1:08d}" / "state.json").read_text())
        return {name: optimizer["param_groups"][0]["lr"] for name, optimizer in state["optimizers"].items()}

    for step, factor in ((0, 1), (3, 1), (4, 1), (5, 0.75), (6, 0.5), (7, 0.25)):  # 8 × 0.5 = 4 decaying steps
        assert lr_of_step(step) == pytest.approx({k: v * factor for k, v in base.items()}), step


def test_under_a_time_budget_the_decay_is_planned_once_and_ends_the_run(phantom_prepared, tmp_path):
    common = ["train.steps=100000", "train.lr_decay_share=0.5", "train.checkpoint_every=100000"]
    common += ["train.sample_every=100000", "train.warmup_steps=1"]
    run = tmp_path / "b"
    first = api.train(phantom_prepared, run, model="gan", config="tiny", set=common, time_budget=3)
    plan = open_checkpoint(run).state["plan"]
    start, length = plan["decay_start"], plan["decay_steps"]
    assert 0 < start < first["steps"] <= start + length  # ended by the budget or by the decay's last step
    assert (run / "checkpoints" / f"step-{start:08d}").is_dir()  # a checkpoint where the decay was planned
    assert length == max(1, round(start * 0.5 / 0.5))  # the rest of the budget at the speed so far
    state = open_checkpoint(run).state
    lr = state["optimizers"]["generator"]["param_groups"][0]["lr"]
    assert lr == pytest.approx(state["train"]["lr"] * (start + length - (first["steps"] - 1)) / length)


def test_run_folder_rules(phantom_prepared, tmp_path):
    api.train(phantom_prepared, tmp_path / "r", config="tiny", set=["train.steps=2", "train.ae_steps=1"])
    with pytest.raises(InputError, match="--resume"):
        api.train(phantom_prepared, tmp_path / "r", config="tiny")
    with pytest.raises(InputError, match="contradict"):
        api.train(phantom_prepared, tmp_path / "r", config="tiny", resume=True, overwrite=True)
    with pytest.raises(InputError, match="another model config"):  # another resolution
        api.train(phantom_prepared, tmp_path / "r", config="tiny", set=["model.image_size=64"], resume=True)


def test_checkpoint_problems_are_named(phantom_prepared, tmp_path):
    api.train(phantom_prepared, tmp_path / "r", config="tiny", set=["train.steps=2", "train.ae_steps=1"])
    with pytest.raises(InputError, match="not found"):
        open_checkpoint(tmp_path / "nothing")
    with pytest.raises(InputError, match="'ldm' model, not 'verifier'"):
        open_checkpoint(tmp_path / "r", family="verifier")
    with pytest.raises(InputError, match="trained at 32 px, not 64"):
        open_checkpoint(tmp_path / "r", image_size=64)
    weights = open_checkpoint(tmp_path / "r").folder / WEIGHTS
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated or corrupt"):
        open_checkpoint(tmp_path / "r").tensors()


def test_verifier_trains_on_prepared_data(phantom_prepared, tmp_path):
    result = api.train(phantom_prepared, tmp_path / "v", model="verifier", config="tiny", set=["train.steps=60"])
    rows = losses(tmp_path / "v")
    assert result["family"] == "verifier"
    assert sum(r["verifier_loss"] for r in rows[-10:]) < sum(r["verifier_loss"] for r in rows[:10])


def test_out_of_memory_gives_one_line_of_advice(phantom_prepared, tmp_path, monkeypatch):
    from mammosynth.training.ldm import LDMTask

    def explode(self, batch, ctx):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(LDMTask, "autoencoder_loss", explode)
    with pytest.raises(InputError, match=r"out of memory .* train\.batch_size=2 --set train\.accumulate=2"):
        api.train(phantom_prepared, tmp_path / "r", config="tiny", set=["train.steps=2"])


def test_gradient_accumulation_sees_every_micro_batch(phantom_prepared, tmp_path):
    from mammosynth.training.data import BatchOrder

    order = BatchOrder(n=10, batch_size=2, accumulate=3, seed=1)
    seen = [i for step in range(5) for micro in range(3) for i in order.indices(step, micro)]
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:20]) == list(range(10))
    result = api.train(
        phantom_prepared,
        tmp_path / "acc",
        config="tiny",
        set=["train.steps=4", "train.ae_steps=2", "train.accumulate=2", "train.batch_size=2"],
    )
    assert result["steps"] == 4


def _trainer(family: str, data_folder, out, overrides: list[str]):
    from mammosynth.training import Trainer, task_class
    from mammosynth.training.data import PreparedImages
    from mammosynth.training.device import pick_device

    cfg = load_config(family, "tiny", overrides)
    task = task_class(family)(cfg["model"], cfg["train"], pick_device("cpu"))
    data = PreparedImages(data_folder, size=cfg["model"].image_size, labels=task.uses_labels)
    return Trainer(task, data, out, cfg), data


def test_accumulated_micro_batches_give_the_gradient_of_one_batch(phantom_prepared, tmp_path, monkeypatch):
    from mammosynth.training.verifier import VerifierTask

    def plain_loss(self, batch, ctx):  # the recipe's random augmentation drawn per micro-batch aside
        loss = self.model.loss(batch["image"].to(self.device), batch["kinds"].to(self.device))
        return loss, {"verifier_loss": loss.item()}

    monkeypatch.setattr(VerifierTask, "loss", plain_loss)
    # a plain mean over cells (a class-weighted mean divides by each micro-batch's own weight sum)
    fixed = ["train.lr=0", "train.weight_decay=0", "train.grad_clip=0", "train.precision=fp32", "model.lesion_weight=1"]
    split, data = _trainer(
        "verifier", phantom_prepared, tmp_path / "a", [*fixed, "train.batch_size=2", "train.accumulate=2"]
    )
    whole, _ = _trainer("verifier", phantom_prepared, tmp_path / "b", [*fixed, "train.batch_size=4"])
    indices = [0, 5, 9, 13]  # with and without lesions
    split.train_step(0, [data.batch(indices[:2]), data.batch(indices[2:])])
    whole.train_step(0, [data.batch(indices)])
    pairs = list(zip(split.task.model.parameters(), whole.task.model.parameters(), strict=True))
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a, _ in pairs)
    for a, b in pairs:
        assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-7)


def test_ema_warms_up_and_averages_trainable_weights_only(phantom_prepared, tmp_path):
    from mammosynth.training.loop import ema_with_warmup

    averaged, current = [torch.zeros(3)], [torch.ones(3)]
    ema_with_warmup(0.999)(averaged, current, torch.tensor(1))  # second update: decay 2/11, not 0.999
    assert torch.allclose(averaged[0], torch.full((3,), 9 / 11))
    ema_with_warmup(0.5)(averaged, current, torch.tensor(1000))  # later the configured decay rules
    assert torch.allclose(averaged[0], torch.full((3,), 9 / 11 + (1 - 9 / 11) / 2))
    gan, _ = _trainer("gan", phantom_prepared, tmp_path / "g", [])
    assert {key.split(".")[0] for key in gan.ema["gan"].module.state_dict()} == {"generator"}
    ldm, _ = _trainer("ldm", phantom_prepared, tmp_path / "l", [])
    assert {key.split(".")[0] for key in ldm.ema["ldm"].module.state_dict()} == {"unet", "conditions"}


def test_a_checkpoint_whose_ema_never_ran_loads_the_trained_weights(phantom_prepared, tmp_path):
    from mammosynth.models.ldm import LatentDiffusion
    from mammosynth.training import find_checkpoint
    from mammosynth.training.checkpoint import load_module

    api.train(
        phantom_prepared,
        tmp_path / "ae",
        config="tiny",  # autoencoder stage only: the EMA never updates
        set=["train.steps=4", "train.ae_steps=20", "train.checkpoint_every=4"],
    )
    checkpoint = open_checkpoint(find_checkpoint(tmp_path / "ae"))
    assert int(checkpoint.tensors()["ema_count/ldm"].reshape(-1)[0]) == 0
    model = LatentDiffusion(load_config("ldm", "tiny")["model"])
    assert load_module(checkpoint, "ldm", model) == "ldm"
    trained = {k[4:]: v for k, v in checkpoint.tensors().items() if k.startswith("ldm/")}
    assert all(torch.equal(v, trained[k]) for k, v in model.state_dict().items())
    api.train(
        phantom_prepared,
        tmp_path / "ae",
        config="tiny",
        resume=True,  # into the diffusion stage
        set=["train.steps=24", "train.ae_steps=20", "train.checkpoint_every=4"],
    )
    later = open_checkpoint(find_checkpoint(tmp_path / "ae"))
    assert int(later.tensors()["ema_count/ldm"].reshape(-1)[0]) == 4
    assert load_module(later, "ldm", model) == "ema/ldm"
    tensors = later.tensors()
    assert torch.equal(model.state_dict()["unet.out.2.conv.weight"], tensors["ema/ldm/unet.out.2.conv.weight"])
    assert not torch.equal(tensors["ldm/unet.out.2.conv.weight"], tensors["ema/ldm/unet.out.2.conv.weight"])
    assert "ema/ldm/autoencoder.encoder.blocks.0.conv.weight" not in tensors  # frozen: not averaged, as trained
    assert torch.equal(
        model.state_dict()["autoencoder.encoder.blocks.0.conv.weight"],
        tensors["ldm/autoencoder.encoder.blocks.0.conv.weight"],
    )
