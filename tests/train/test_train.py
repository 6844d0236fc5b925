"""Real (short) training runs on scikit-learn digits: learning, run folder, resume, methods."""
import math
import json

import pytest
import torch
import yaml

from tna import checkpoint as ckpt
from tna.config import from_dict
from tna.errors import TnaError
from tna.train import TrainConfig, train

# Small and quick: a tiny MLP on digits without augmentation.
TINY = dict(dataset="digits", arch="16-8-out", augment=False, batch_size=32, limit=96,
            eval_batch_size=500, progress=False)


def tiny(tmp_path, name, **kw) -> TrainConfig:
    return TrainConfig(**{**TINY, "epochs": 1, "ternary_after": 0, "out": str(tmp_path / name),
                          **kw})


def read_metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_short_tna_ternary_run_learns_and_writes_its_run_folder(tmp_path):
    cfg = TrainConfig(dataset="digits", arch="32-32-out", method="tna", weights="ternary",
                      epochs=3, ternary_after=1, batch_size=32, lr=0.01, dropout=0.0,
                      lr_schedule="exp", augment=False, progress=False,
                      out=str(tmp_path / "run"))
    best = train(cfg)
    run = tmp_path / "run"
    assert best == run / "best.pt"
    for name in ("checkpoint.pt", "best.pt", "metrics.jsonl", "curves.png", "config.yaml",
                 "result.json"):
        assert (run / name).is_file(), name
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]

    result = json.loads((run / "result.json").read_text())
    # digits has 10 classes: chance is 10 %
    assert result["test_acc"] > 60.0, result
    assert result["method"] == "tna" and result["weights"] == "ternary"

    rows = read_metrics(run)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    for r in rows:
        for key in ("loss", "ce_base", "ce_twin", "mse", "train_acc", "twin_train_acc",
                    "val_acc", "twin_val_acc", "lr", "seconds", "compressed"):
            assert key in r, key
        # the epoch means are linear in the batch terms: Eq. 5 holds for them too
        assert r["loss"] == pytest.approx(r["ce_base"] + r["ce_twin"] + cfg.alpha * r["mse"],
                                          rel=1e-6)
        assert r["seconds"] > 0 and 0 <= r["val_acc"] <= 100
    assert [r["compressed"] for r in rows] == [False, True, True]
    assert [r["lr"] for r in rows] == pytest.approx([0.01, 0.01 * 0.928, 0.01 * 0.928 ** 2])
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert from_dict(TrainConfig, yaml.safe_load((run / "config.yaml").read_text())) == cfg

    # best.pt comes from a ternary epoch and rebuilds as a ternary model
    model, state = ckpt.load_model(best)
    assert state["compression"]["mode"] == "ternary" and state["epoch"] >= 2
    assert result["best_epoch"] == state["epoch"]
    from tna.quant import compression_of, effective_weight
    hidden = model.synapse_blocks[1]
    assert compression_of(hidden) == "ternary"
    # pow2 scale (the default): {-s, 0, s} with s a power of two, saved in the checkpoint
    (s,) = state["compression"]["scales"]
    assert s == 2.0 ** round(math.log2(s))
    assert set(torch.unique(effective_weight(hidden)).tolist()) <= {-s, 0.0, s}
    assert result["warnings"] == []
    assert state["twin"] is not None and state["config"] == cfg.to_dict()


def test_resume_reaches_the_same_weights(tmp_path, capsys):
    # Interrupted after epoch 2 of 3 (compression switched on after epoch 1; dropout on, so
    # the saved RNG state matters) and resumed: bit-identical to the uninterrupted run.
    # The cosine schedule depends on --epochs, so the run is really interrupted (after its
    # second epoch's checkpoint), not shortened.
    common = dict(TINY, method="tna", weights="ternary", ternary_after=1, dropout=0.2, epochs=3)
    train(TrainConfig(**common, out=str(tmp_path / "full")))

    def interrupt(model, row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**common, out=str(tmp_path / "part")), on_epoch=interrupt)
    assert f"resume with `tna train --resume {tmp_path / 'part'}`" in capsys.readouterr().err
    # as a user resumes: `tna train --resume RUN` alone, the settings from RUN/config.yaml
    from tna.cli import main
    main(["train", "--resume", str(tmp_path / "part"), "--no-progress"])    # no SystemExit
    a = ckpt.load(tmp_path / "full" / "checkpoint.pt")
    b = ckpt.load(tmp_path / "part" / "checkpoint.pt")
    assert a["epoch"] == b["epoch"] == 3
    for net in ("model", "twin"):
        assert a[net].keys() == b[net].keys()
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k}"
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    for k in sa:
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(sa[k][name], sb[k][name])
    strip = [{k: v for k, v in r.items() if "seconds" not in k and k != "samples_per_s"}
             for r in read_metrics(tmp_path / "full")]
    strip_b = [{k: v for k, v in r.items() if "seconds" not in k and k != "samples_per_s"}
               for r in read_metrics(tmp_path / "part")]
    assert strip == strip_b


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """A finished 2-epoch ternary run (compressed from epoch 2, cosine lr) and its stderr."""
    import contextlib
    import io
    out = tmp_path_factory.mktemp("two") / "run"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        train(TrainConfig(**TINY, method="single", epochs=2, ternary_after=1, out=str(out)))
    return out, err.getvalue()


def test_compression_names_layers_as_the_exported_file_does(two_epochs):
    # 16-8-out: dense blocks 0, 1, 2 are the file's layer/1, layer/2, layer/3 (layer/0: input)
    _, err = two_epochs
    assert "epoch 2: base hidden layers layer/2 now ternary" in err, err


def _cli(capsys, *argv):
    """`tna ARGV` through main(): (exit code, stderr)."""
    from tna.cli import main
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def test_resume_with_fewer_epochs_says_how_many_are_trained(two_epochs, capsys):
    run, _ = two_epochs
    code, err = _cli(capsys, "train", "--resume", run, "--epochs", "1", "--no-progress")
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [f"error: --resume {run} --epochs 1: 2 epochs are already "
                                        f"trained; give --epochs above 2 to train on"]


def test_resume_of_a_finished_run_says_it_is_finished(two_epochs, capsys):
    run, _ = two_epochs
    before = (run / "result.json").read_text()
    code, err = _cli(capsys, "train", "--resume", run, "--no-progress")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{run} is finished: 2 of 2 epochs trained and tested" in err
    assert "--epochs 4" in err and (run / "result.json").read_text() == before   # not re-tested


def test_extending_a_run_logs_the_lr_it_uses_and_says_the_schedule_is_rebuilt(
        two_epochs, tmp_path, capsys):
    """The optimizer state holds the old cosine schedule's last lr (0): the new epoch must
    train and log with the rebuilt schedule's lr, and say that it was rebuilt."""
    import shutil

    from tna.train.loop import lr_factor
    run = tmp_path / "run"
    shutil.copytree(two_epochs[0], run)
    code, err = _cli(capsys, "train", "--resume", run, "--epochs", "3", "--no-progress")
    assert code == 0, err
    rows = read_metrics(run)
    assert [r["epoch"] for r in rows] == [1, 2, 3] and rows[1]["lr"] > 0
    cfg = TrainConfig(**{**TINY, "method": "single", "epochs": 3, "ternary_after": 1})
    steps = 3                                    # --limit 96 caps the train split: 3 batches
    expected = cfg.lr * lr_factor(2 * steps, steps, cfg)
    assert rows[2]["lr"] == pytest.approx(expected) and expected > 1e-4
    assert f"lr {expected:.2e}" in err
    assert (f"the cosine lr schedule is rebuilt over 3 epochs, so epoch 3 starts at lr "
            f"{expected:.2e} (the old one was at 0.00e+00)") in err
    state = ckpt.load(run / "checkpoint.pt")
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_without_validation_best_pt_is_the_last_epoch(tmp_path, monkeypatch):
    # --val-size 0 trains on the whole train split; train accuracy (under dropout, on moving
    # weights) does not pick best.pt: the last epoch in the final weight mode does, even when
    # its train accuracy is the lowest (forced here).
    from tna.train import loop
    real = loop.Run.train_epoch

    def worse_each_epoch(self):
        row = real(self)
        row["train_acc"] = 100.0 - self.epoch
        return row

    monkeypatch.setattr(loop.Run, "train_epoch", worse_each_epoch)
    seen = []
    best = train(tiny(tmp_path, "r", method="single", weights="ternary", epochs=3,
                      ternary_after=1, val_size=0, dropout=0.2),
                 on_epoch=lambda model, row: seen.append(row))
    assert [("val_acc" in r) for r in seen] == [False] * 3
    state = ckpt.load(best)
    assert state["epoch"] == 3
    result = json.loads((tmp_path / "r" / "result.json").read_text())
    assert result["best_epoch"] == 3 and result["best_val_acc"] is None


def test_existing_run_needs_resume_and_same_settings(tmp_path):
    cfg = tiny(tmp_path, "r", method="single", weights="fp")
    train(cfg)
    with pytest.raises(TnaError, match="--resume"):
        train(cfg)
    with pytest.raises(TnaError, match="lr differ"):
        train(TrainConfig(**{**cfg.to_dict(), "lr": 0.5, "resume": True, "epochs": 2}))
    with pytest.raises(TnaError, match="does not exist"):
        train(tiny(tmp_path, "nothing-here", resume=True))


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A one-epoch single fp run whose best.pt teaches the kd runs."""
    out = tmp_path_factory.mktemp("teacher")
    return train(TrainConfig(**{**TINY, "method": "single", "weights": "fp", "epochs": 1,
                                "out": str(out / "run")}))


@pytest.mark.parametrize("kw,has,lacks", [
    (dict(method="single", weights="fp"), {"ce_base", "val_ce"},
     {"ce_twin", "mse", "twin_val_acc", "twin_val_ce", "val_mse"}),
    (dict(method="single", weights="binary"), {"ce_base"}, {"ce_twin"}),
    (dict(method="tna", weights="fp"), {"ce_base", "ce_twin", "mse", "twin_val_acc",
                                         "twin_val_ce", "val_mse"}, set()),
    (dict(method="kd", weights="ternary"), {"mse"}, {"ce_base", "ce_twin"}),
    (dict(method="kd-ce", weights="fp"), {"ce_base", "mse"}, {"ce_twin"}),
], ids=["single-fp", "single-binary", "tna-fp", "kd-ternary", "kd-ce-fp"])
def test_methods_and_weight_modes_one_epoch(tmp_path, teacher, kw, has, lacks):
    if kw["method"] in ("kd", "kd-ce"):
        kw = dict(kw, teacher=str(teacher.parent))     # a run folder means its best.pt
    best = train(tiny(tmp_path, "run", **kw))
    (row,) = read_metrics(best.parent)
    assert has <= set(row) and not (lacks & set(row)), row
    assert torch.isfinite(torch.tensor(row["loss"]))
    model, state = ckpt.load_model(best)
    from tna.quant import compression_of
    modes = [compression_of(b) for b in model.synapse_blocks]
    expect = "8bit" if kw["weights"] == "fp" else kw["weights"]
    assert modes == ["8bit", expect, "8bit"]
    assert (state["twin"] is not None) == (kw["method"] == "tna")


def test_teacher_must_match_the_data(tmp_path, teacher):
    cfg = tiny(tmp_path, "kd", method="kd", teacher=str(teacher), dataset="npz:" + str(
        _npz_with_classes(tmp_path, 3)))
    with pytest.raises(TnaError, match="teacher"):
        train(cfg)


def _npz_with_classes(tmp_path, k):
    import numpy as np
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(path, x=rng.integers(0, 256, (40, 8, 8), dtype=np.uint8), y=np.arange(40) % k)
    return path


def test_one_epoch_with_the_defaults_trains_fp_and_says_so(tmp_path, capsys):
    """--epochs 1 needs no --ternary-after. Compression waits at least one epoch (from the
    first step conv-small's base stays at chance: its dense layer's ternary weights are all
    0), so a 1-epoch ternary run trains fp, says so, and exports fp."""
    from tna import netx
    from tna.export import ExportConfig, export
    cfg = TrainConfig(**{**TINY, "epochs": 1, "out": str(tmp_path / "one")})
    assert cfg.ternary_after is None and cfg.compress_after == 1 and cfg.final_weights == "fp"
    assert [TrainConfig(**{**TINY, "epochs": e}).compress_after for e in (2, 3, 4)] == [1, 1, 2]
    assert TrainConfig(**{**TINY, "epochs": 2}).final_weights == "ternary"
    best = train(cfg)
    err = capsys.readouterr().err
    assert "--epochs 1 leaves no epoch for ternary weights" in err and "trains fp" in err
    assert best.name == "best.pt"
    state = ckpt.load(best)
    assert state["compression"] is None and state["final_weights"] == "fp"
    result = json.loads((tmp_path / "one" / "result.json").read_text())
    assert result["weights"] == "fp"
    net = export(tmp_path / "one", ExportConfig(out=str(tmp_path / "one.net"), limit=50,
                                                progress=False, verify=False))
    assert netx.read_net(net).meta.weights == "fp"


def test_a_checkpoint_config_comes_back_as_a_train_config():
    """TrainConfig.from_checkpoint: typed fields; a run saved before ternary_scale existed
    trained with ±1 weights (OLD_RUN_DEFAULTS); keys no field has any more are left out."""
    from tna.train.config import TrainConfig
    old = {"method": "tna", "weights": "ternary", "epochs": 4, "delta": 0.2,
           "dataset": "digits", "gone_option": 1}
    cfg = TrainConfig.from_checkpoint(old)
    assert isinstance(cfg, TrainConfig) and cfg.ternary_scale == "one" and cfg.delta == 0.2
    assert cfg.compress_after == 2 and cfg.dataset == "digits"
    assert TrainConfig.from_checkpoint({**old, "ternary_scale": "pow2"}).ternary_scale == "pow2"
    assert TrainConfig.from_checkpoint(TrainConfig().to_dict()) == TrainConfig()
    with pytest.raises(TnaError, match="^the checkpoint's training config: method"):
        TrainConfig.from_checkpoint({"method": "nonsense"})


def test_threads_default_to_the_allocation(monkeypatch, tmp_path):
    """--threads 0 under SLURM (or a taskset) uses the CPUs allocated, not the node's cores."""
    import torch

    from tna.train import TrainConfig
    from tna.train.distributed import World
    from tna.train.loop import Run
    before = torch.get_num_threads()
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    try:
        Run(TrainConfig(dataset="digits", arch="mlp", epochs=1, limit=64, progress=False,
                        out=str(tmp_path / "run")), World())
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
