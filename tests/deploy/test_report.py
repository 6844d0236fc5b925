"""What `tna run` reports besides parity: per-class accuracy and a confusion matrix that add up,
predicted classes for --input arrays, PNGs a person can look at, and no progress-bar noise in
a log file."""
import json
import subprocess
import sys

import numpy as np
import pytest

from tna.deploy import RunConfig, run
from tna.deploy.runner import accuracy_by_timesteps


def test_confusion_matrix_adds_up_and_plots_are_written(digits_net, tmp_path):
    report = tmp_path / "out" / "r.json"
    result = run(digits_net, RunConfig(backend="emulator", report=str(report), progress=False))
    d = json.loads(report.read_text())
    m = np.array(d["confusion_matrix"]["counts"])
    assert m.shape == (10, 10) and m.sum() == result.samples == 359
    assert np.trace(m) / m.sum() * 100 == pytest.approx(d["accuracy"]["emulator"])
    per_class = d["per_class_accuracy"]
    assert list(per_class) == [f"digit {i}" for i in range(10)]
    assert per_class["digit 3"] == pytest.approx(100 * m[3, 3] / m[3].sum(), abs=0.01)
    assert len(d["predictions"]) == 359
    est = d["loihi2_estimate"]                  # the Loihi 2 fit: cores and chips of the net
    assert est["cores"] == sum(f["cores"] for f in est["layers"]) >= 2 and est["chips"] == 1
    for name in ("r_confusion.png", "r_raster.png"):
        assert (tmp_path / "out" / name).read_bytes()[:4] == b"\x89PNG"
    assert "per-class accuracy (emulator), lowest:" in result.summary()


def test_raster_readout_names_classes_true_label_and_prediction(digits_net, tmp_path,
                                                                monkeypatch):
    """The voltage readout panel: a legend of the class names beside its lines, and the
    sample's true and predicted class in its title."""
    from tna.data import load_dataset
    from tna.deploy import plots
    figures = {}
    real = plots._save

    def keep(fig, path):
        figures[path.name] = [(ax.get_title(), ax.get_legend()) for ax in fig.axes]
        return real(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    report = tmp_path / "r.json"
    result = run(digits_net, RunConfig(backend="emulator", report=str(report), progress=False))
    title, legend = figures["r_raster.png"][-1]
    label = int(load_dataset("digits").y_test[0])
    assert title.endswith(f"\ntrue: digit {label}, predicted: digit {result.predictions[0]}")
    assert [t.get_text() for t in legend.get_texts()] == [f"digit {i}" for i in range(10)]
    # an --input array has no labels: the prediction alone
    np.save(tmp_path / "x.npy", np.random.default_rng(1).integers(0, 16, (2, 64, 5)))
    result = run(digits_net, RunConfig(backend="emulator", input=str(tmp_path / "x.npy"),
                                       plot=str(tmp_path / "p"), progress=False))
    title, _ = figures["raster.png"][-1]
    assert title.endswith(f"\npredicted: digit {result.predictions[0]}") and "true" not in title


def test_input_runs_print_and_save_predicted_classes(digits_net, tmp_path):
    x = np.random.default_rng(1).integers(0, 16, (3, 64, 5))
    np.save(tmp_path / "x.npy", x)
    result = run(digits_net, RunConfig(backend="emulator", input=str(tmp_path / "x.npy"),
                                       save_output=str(tmp_path / "y.npy"), progress=False))
    pred = np.load(tmp_path / "y_predicted.npy")
    assert pred.tolist() == result.predictions.tolist()
    y = np.load(tmp_path / "y.npy")                       # the voltage readout, not 0 spikes
    assert y.shape == (3, 10, 5) and np.abs(y).sum() > 0
    assert np.array_equal(y.sum(-1).argmax(1), pred)
    shown = ", ".join(f"{c} (digit {c})" for c in pred)
    assert f"predicted (emulator): {shown}" in result.summary()


def test_no_progress_bars_in_a_log_file(digits_net):
    """stderr is a file: one line per phase, never a bar's carriage returns."""
    out = subprocess.run([sys.executable, "-m", "tna.cli", "run", str(digits_net),
                          "--backend", "emulator"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "\r" not in out.stderr and "it/s" not in out.stderr
    assert "running 359 samples on reference ..." in out.stderr


def test_a_net_runs_at_fewer_steps_than_trained(digits_net):
    """--timesteps T' < T: every backend runs the first T' steps and the readout sums T'; the
    reference and the emulator still agree exactly, and more steps than trained are refused."""
    from tna.errors import TnaError
    full = run(digits_net, RunConfig(backend="emulator", progress=False))
    short = run(digits_net, RunConfig(backend="emulator", timesteps=2, progress=False))
    assert short.ok and short.parity[0]["spike_values_differing"] == 0
    assert (short.timesteps, short.trained_timesteps) == (2, 5)
    assert (full.timesteps, full.trained_timesteps) == (5, 5)
    assert short.outputs["emulator"].logits.shape == full.outputs["emulator"].logits.shape
    assert not np.array_equal(short.outputs["emulator"].logits, full.outputs["emulator"].logits)
    assert "at T' = 2 of the T = 5 steps it was trained with" in short.summary()
    assert short.to_dict()["timesteps"] == 2
    # the full run's first 2 output steps are the 2-step run's output (the net is causal),
    # which accuracy_by_timesteps reads instead of running again
    v = full.outputs["emulator"].voltage
    assert np.array_equal(short.outputs["emulator"].voltage, v[..., :2])
    by_t = accuracy_by_timesteps(full)
    assert by_t[2] == short.accuracy["emulator"] and by_t[5] == full.accuracy["emulator"]
    with pytest.raises(TnaError, match="trained with T = 5; it runs at that many steps or fewer"):
        run(digits_net, RunConfig(backend="emulator", timesteps=6, progress=False))
