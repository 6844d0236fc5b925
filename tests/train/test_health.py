"""The dying-run warnings: they fire on a run made to die and stay silent on a healthy one."""
import json

from tna import checkpoint as ckpt
from tna.train import TrainConfig, train
from tna.train.health import accuracy_warning, activity_warnings

FAST = dict(dataset="digits", arch="32-out", weights="fp", augment=False, batch_size=32,
            eval_batch_size=500, progress=False)


def test_accuracy_warning_fires_near_chance_only():
    assert accuracy_warning("base", 12.0, 10, 3) and "--lr" in accuracy_warning("base", 12, 10, 3)
    assert accuracy_warning("twin", 15.0, 10, 1)
    assert accuracy_warning("base", 15.1, 10, 1) is None
    assert accuracy_warning("base", 55.0, 2, 1)        # chance is 50 % with two classes


def test_a_base_at_chance_since_compression_is_told_to_wait_longer(tmp_path, capsys):
    """Compressed from the first step with every weight within --delta of 0, the base is at
    chance: the warning names --ternary-after (and --delta), not the lr."""
    out = tmp_path / "zeroed"
    train(TrainConfig(**{**FAST, "arch": "32-16-out", "weights": "ternary"}, method="single",
                      epochs=1, ternary_after=0, delta=3.9, out=str(out)))
    warned = [line for line in capsys.readouterr().err.splitlines() if "at chance" in line]
    assert len(warned) == 1, warned
    assert ("its hidden layers are ternary from epoch 1 on: give it more fp epochs first "
            "(raise --ternary-after, now 0) so its weights grow past --delta (3.9)") in warned[0]
    assert "--lr" not in warned[0]


def test_activity_warnings_name_silent_and_saturated_layers():
    assert activity_warnings([0.2, 0.3]) == []
    silent, saturated = activity_warnings([0.001, 0.2, 0.99], epoch=4)
    assert "layer 0" in silent and "--weight-scale" in silent and "epoch 4" in silent
    assert "layer 2" in saturated and "--threshold" in saturated


def test_a_run_made_to_die_warns_and_records_it(tmp_path, capsys):
    out = tmp_path / "dead"
    train(TrainConfig(**FAST, method="single", epochs=2, lr=10.0, lr_schedule="exp",
                      out=str(out)))
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if line.startswith("warning: epoch")]
    assert warned, err
    assert any("at chance" in w or "silent" in w for w in warned)
    result = json.loads((out / "result.json").read_text())
    assert result["warnings"] == warned


def test_a_healthy_run_stays_silent(tmp_path, capsys):
    out = tmp_path / "ok"
    train(TrainConfig(**FAST, method="tna", epochs=2, out=str(out)))
    err = capsys.readouterr().err
    assert "warning" not in err, err
    assert json.loads((out / "result.json").read_text())["warnings"] == []
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(0 < r < 1 for row in rows for r in row["activity"])


def test_export_warns_when_the_net_is_at_chance(tmp_path, capsys):
    from tna.export import ExportConfig, export
    out = tmp_path / "dead"
    # a readout that quantises to 0 and does not move: every logit ties, the net is at chance
    train(TrainConfig(**{**FAST, "arch": "32-16-out"}, method="single", epochs=1, lr=1e-9,
                      out=str(out)))
    state = ckpt.load(out / "best.pt")
    key = [k for k in state["model"] if k.endswith("weight")][-1]
    state["model"][key].zero_()
    state["model"][key][0].fill_(0.5)          # class 0 wins every tie-break: not all zero
    ckpt.save(state, out / "best.pt")
    capsys.readouterr()
    export(out, ExportConfig(out=str(tmp_path / "dead.net"), progress=False))
    assert "at chance" in capsys.readouterr().err
