"""export(checkpoint) -> netx HDF5: loads in unmodified netx, weights, metadata, atomic writes."""
import contextlib
import io
import json
import os
import re

import h5py
import numpy as np
import pytest
import torch

from tna import checkpoint as ckpt
from tna import netx
from tna.errors import TnaError
from tna.export import ExportConfig, export
from tna.export.writer import model_to_netx

pytestmark = pytest.mark.lava     # the files are loaded with lava-dl's netx (imports Lava)


def do_export(best, path, **kw):
    return export(best, ExportConfig(out=str(path), limit=40, progress=False, **kw))


def load_with_netx(path, input_message_bits):
    """lava-dl's own loader, unmodified; returns (layer count, in shape, out shape)."""
    from tna.lava.info import prepare_lava_import
    prepare_lava_import()
    with contextlib.redirect_stdout(io.StringIO()):
        from lava.lib.dl.netx import hdf5
        net = hdf5.Network(net_config=str(path), input_message_bits=input_message_bits)
    try:
        return len(net.layers), tuple(net.inp.shape), tuple(net.out.shape)
    finally:
        net.net_config.f.close()   # netx keeps the file open


def block_ints(model):
    """Each weight block's effective integer weights, as the model computes with them."""
    from tna.quant import effective_weight
    out = []
    for b in model.synapse_blocks:
        w = (effective_weight(b).detach().double() * 64).numpy()
        out.append(w)
    return out


@pytest.mark.parametrize("name,types,netx_layers", [
    ("dense", ["input", "dense", "dense", "dense"], 3),
    ("conv", ["input", "conv", "conv", "flatten", "dense", "dense"], 4),
    ("pool", ["input", "conv", "conv", "flatten", "dense", "dense"], 4),
])
def test_round_trip_through_netx(trained, tmp_path, name, types, netx_layers):
    best = trained(name)
    path = do_export(best, tmp_path / f"{name}.net")
    model, _ = ckpt.load_model(best)
    read = netx.read_net(path)
    assert [layer.type for layer in read.layers] == types
    assert netx.validate(read) == []

    # the file holds exactly the integers the trained model computes with
    ints = block_ints(model)
    weighted = [layer for layer in read.layers if layer.weight is not None]
    assert len(weighted) == len(ints)
    for layer, w in zip(weighted, ints):
        if layer.groups and layer.groups > 1:       # the pool: a depthwise conv, kernel all q
            c, k = layer.out_channels, layer.kernel_size[0]
            assert layer.weight.shape == (c, 1, k, k)
            assert np.all(layer.weight == 16)       # 64 / k² for k = 2
            assert layer.groups == c and layer.stride == (k, k) and layer.padding == (0, 0)
        else:
            assert np.array_equal(layer.weight, w.reshape(layer.weight.shape))
    # the first layer's threshold is scaled by the input range (15 for 4-bit direct input)
    n0 = read.layers[1].neuron
    assert n0.vth_mant == round(0.5 * 64 * 15)
    assert read.layers[-1].neuron.vth_mant == netx.VTH_MANT_MAX   # voltage readout

    n_layers, inp, out = load_with_netx(path, input_message_bits=8)
    assert n_layers == netx_layers
    assert int(np.prod(inp)) == int(np.prod(model.spec.in_shape)) and out == (10,)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_flatten_layer_matches_slayer_order(trained, tmp_path):
    path = do_export(trained("conv"), tmp_path / "conv.net")
    with h5py.File(path) as f:
        assert f["layer/3/type"][0] == b"flatten"
        assert list(f["layer/3/shape"][()]) == [32, 1, 1]
        assert int(f["layer/4/inFeatures"][()]) == 32


def test_ternary_layers_load_as_2bit_weights(trained, tmp_path):
    from tna.lava.info import loaded_weight_bits
    for name, ternary_dense in (("dense", [2]), ("conv", [4])):
        path = do_export(trained(name), tmp_path / f"{name}.net")
        meta = netx.read_net(path).meta
        rows = loaded_weight_bits(path)
        dense = [(i, bits) for i, kind, bits, _ in rows if kind == "dense"]
        for i, bits in dense:
            if i in ternary_dense:
                assert bits == 2, rows
            else:       # the first / last layers keep 8-bit values: netx needs more than 2 bits
                assert bits > 2, rows
        assert set(ternary_dense) <= set(meta.ternary_layers)
        assert meta.weights == "ternary"
        for i in meta.ternary_layers:       # {-m, 0, m}, m = 64 * s with s a power of two
            values = np.unique(netx.read_net(path).layers[i].weight)
            m = values.max()
            assert set(values) <= {-m, 0.0, m} and m == 2 ** round(np.log2(m)), values
        # netx loads convs with 8-bit weights whatever their values; tna's loader at 2 bits
        assert all(bits == 8 for _, kind, bits, _ in rows if kind == "conv")
        tna_rows = loaded_weight_bits(path, "tna")
        assert [r for r in tna_rows if r[1] == "dense"] == [r for r in rows if r[1] == "dense"]
        ternary_convs = [r for r in tna_rows if r[1] == "conv" and r[0] in meta.ternary_layers]
        assert all(bits == 2 for _, _, bits, _ in ternary_convs), tna_rows
        assert ternary_convs or name == "dense"


def test_first_and_last_layers_are_not_ternary(trained, tmp_path):
    path = do_export(trained("dense"), tmp_path / "d.net")
    layers = netx.read_net(path).layers
    for layer in (layers[1], layers[-1]):
        values = set(np.unique(layer.weight).tolist())
        assert not values <= {-64.0, 0.0, 64.0} and len(values) > 3
        assert all(v % 2 == 0 and -256 <= v <= 254 for v in values)


def test_ternary_flag_on_fp_checkpoint(trained, tmp_path, capsys):
    best = trained("fp")
    capsys.readouterr()
    plain = netx.read_net(do_export(best, tmp_path / "fp.net"))
    fp_log = capsys.readouterr().err
    path = do_export(best, tmp_path / "t.net", ternary=True, delta=0.1)
    log = capsys.readouterr().err
    # one line of the Loihi 2 estimate: fewer or as many cores at 2 bits, and its energy
    cores = [int(re.search(r"Loihi 2 estimate \(of Intel's compiler and chip, not their "
                           r"output\): (\d+) cores, 1 chip, [\d.]+ .J–[\d.]+ .J dynamic "
                           r"energy per inference", text)[1]) for text in (fp_log, log)]
    assert 1 <= cores[1] <= cores[0]
    # it reports the validation accuracy before and after, and the change in points
    line = next(ln for ln in log.splitlines() if ln.startswith("ternarised after training"))
    assert "delta 0.1" in line and "val accuracy" in line and "points" in line
    before, after, change = re.search(
        r"([\d.]+)% -> ([\d.]+)% \(([+-][\d.]+) points\)", line).groups()
    assert float(after) - float(before) == pytest.approx(float(change), abs=0.011)

    t = netx.read_net(path)
    m = float(np.abs(t.layers[2].weight).max())      # pow2 scale: {-m, 0, m}, m = 64 * 2**k
    assert set(np.unique(t.layers[2].weight).tolist()) == {-m, 0.0, m} and m == 2 ** round(np.log2(m))
    assert len(np.unique(plain.layers[2].weight)) > 3
    # first and last layers unchanged by --ternary
    assert np.array_equal(t.layers[1].weight, plain.layers[1].weight)
    assert np.array_equal(t.layers[3].weight, plain.layers[3].weight)
    assert t.meta.weights == "ternary" and t.meta.ternary_layers == [2]
    assert t.meta.extra["delta"] == 0.1
    # the file's reference accuracy is that of the ternary net
    assert plain.meta.weights == "fp" and plain.meta.ternary_layers == []


def test_metadata_round_trips(trained, tmp_path):
    best = trained("dense")
    path = do_export(best, tmp_path / "m.net")
    meta = netx.read_net(path).meta
    state = ckpt.load(best)
    assert meta.dataset == "digits" and meta.class_names == [str(i) for i in range(10)]
    assert meta.timesteps == 5 and meta.encoding == "direct" and meta.input_bits == 4
    assert meta.input_shape == [64] and meta.input_message_bits == 8
    assert meta.readout == "voltage" and meta.format_version == netx.FORMAT_VERSION
    assert meta.checkpoint_sha256 == ckpt.sha256(state["path"])
    assert meta.reference_split == "test:40" and 0 <= meta.reference_accuracy <= 100
    assert meta.extra["arch"] == "16-12-out"
    with h5py.File(path) as f:
        assert f["tna"].attrs["format_version"] == netx.FORMAT_VERSION
        assert json.loads(f["tna"].attrs["meta"])["dataset"] == "digits"

    # write -> read of a model with every metadata field set
    m = netx.read_net(path)
    m.meta = netx.Metadata(dataset="npz:x.npz", class_names=["a", "b"], timesteps=9,
                           encoding="rate", input_shape=[64], input_bits=2,
                           input_message_bits=0, readout="spike", reference_accuracy=12.5,
                           reference_split="val:7", checkpoint_sha256="ab" * 32,
                           weights="binary", ternary_layers=[2], tna_version="9.9",
                           extra={"k": [1, 2]})
    back = netx.read_net(netx.write_net(m, tmp_path / "m2.net"))
    assert back.meta == m.meta
    for a, b in zip(back.layers, m.layers):
        assert a.type == b.type and a.shape == b.shape and a.neuron == b.neuron
        assert (a.weight is None and b.weight is None) or np.array_equal(a.weight, b.weight)


def test_metadata_from_a_newer_format_is_refused(trained, tmp_path):
    path = do_export(trained("dense"), tmp_path / "m.net")
    with h5py.File(path, "a") as f:
        f["tna"].attrs["format_version"] = netx.FORMAT_VERSION + 1
    with pytest.raises(TnaError, match="format_version"):
        netx.read_net(path)


def test_model_to_netx_matches_the_file(trained, tmp_path):
    best = trained("conv")
    model, _ = ckpt.load_model(best)
    layers = model_to_netx(model)
    read = netx.read_net(do_export(best, tmp_path / "c.net"))
    assert len(layers) == len(read.layers)
    for a, b in zip(layers, read.layers):
        assert a.type == b.type and tuple(a.shape) == tuple(b.shape) and a.neuron == b.neuron
        if a.weight is not None:
            assert np.array_equal(a.weight, b.weight)


def test_write_is_atomic_and_a_failed_export_keeps_the_old_file(trained, tmp_path,
                                                                monkeypatch):
    best = trained("dense")
    path = tmp_path / "keep.net"
    do_export(best, path)
    before = path.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["keep.net"]

    calls = {"n": 0}
    real = netx._write_layer

    def fail_on_third_layer(g, layer):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (simulated half-way through the file)")
        real(g, layer)

    monkeypatch.setattr(netx, "_write_layer", fail_on_third_layer)
    with pytest.raises(TnaError, match="exists; pass --force"):
        do_export(best, path, verify=False)      # an existing --out is kept without --force
    with pytest.raises(OSError, match="disk full"):
        do_export(best, path, verify=False, force=True)
    assert calls["n"] == 3                       # it failed while writing, not before
    assert path.read_bytes() == before           # the previous file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["keep.net"]   # no temporary left

    monkeypatch.undo()
    with pytest.raises(TnaError):
        do_export(tmp_path / "no-such-run", path)
    assert path.read_bytes() == before


def test_export_errors_are_one_line(tmp_path, trained):
    with pytest.raises(TnaError, match="no such checkpoint"):
        do_export(tmp_path / "missing.pt", tmp_path / "x.net")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(TnaError, match=r"bad\.pt: .*checkpoint"):
        do_export(bad, tmp_path / "x.net")
    state = torch.load(trained("dense"), weights_only=True)
    state["model"] = {k: v * float("nan") if v.is_floating_point() else v
                      for k, v in state["model"].items()}
    torch.save(state, tmp_path / "nan.pt")
    with pytest.raises(TnaError, match="NaN"):
        do_export(tmp_path / "nan.pt", tmp_path / "x.net")


def test_an_interrupted_run_says_which_checkpoint_and_refuses_a_silent_fp_net(tmp_path, capsys):
    """A ternary run stopped before its ternary phase has no best.pt and fp weights: export
    refuses, naming --resume and --ternary; with --ternary it compresses; a stopped fp run
    exports checkpoint.pt and says which epoch."""
    from tna.train import TrainConfig, train

    def stop(model, row):
        raise KeyboardInterrupt

    base = dict(dataset="digits", arch="16-8-out", limit=96, batch_size=32, augment=False,
                progress=False, epochs=3)
    for name, weights in (("tern", "ternary"), ("fp", "fp")):
        with pytest.raises(KeyboardInterrupt):
            train(TrainConfig(**base, weights=weights, ternary_after=2,
                              out=str(tmp_path / name)), on_epoch=stop)
        assert not (tmp_path / name / "best.pt").exists() or weights == "fp"
    with pytest.raises(TnaError, match=r"a ternary run stopped at epoch 1, before its ternary "
                                       r"phase \(from epoch 3\).*--resume.*--ternary"):
        export(tmp_path / "tern", ExportConfig(out=str(tmp_path / "t.net"), progress=False))
    assert not (tmp_path / "t.net").exists()
    assert "no best.pt" not in capsys.readouterr().err    # the note is for an export that goes on
    export(tmp_path / "tern", ExportConfig(out=str(tmp_path / "t.net"), ternary=True,
                                           progress=False, verify=False))
    err = capsys.readouterr().err
    assert "no best.pt" in err and "exporting checkpoint.pt, epoch 1 of 3, weights fp" in err
    assert netx.read_net(tmp_path / "t.net").meta.weights == "ternary"
    assert "ternary weights" in err and "checked by tna's emulator" in err


def test_learned_decays_are_exported_as_trained_and_deploy_exactly(trained, tmp_path):
    """--learn-decays: each layer's decays moved off their start in training; the file holds
    exactly the 1/4096-grid values the forward pass used; reference = emulator on every test
    sample and = Lava on some."""
    from tna.deploy import RunConfig, run
    best = trained("decays")
    state = torch.load(best, weights_only=False)
    learned = [(round(float(state["model"][f"blocks.{i}.neuron.current_decay"])),
                round(float(state["model"][f"blocks.{i}.neuron.voltage_decay"])))
               for i in (0, 2, 3)]                  # conv, dense, readout (1 is flatten)
    assert all(d != (1024, 123) for d in learned)   # trained away from 0.25 / 0.03 (BASE)
    path = tmp_path / "d.net"
    do_export(best, path)
    model = netx.read_net(path)
    assert [(n.i_decay, n.v_decay) for n in (netx.neuron_of(la) for la in model.layers)
            if n is not None] == learned
    emulated = run(path, RunConfig(backend="emulator", progress=False))
    assert emulated.ok and emulated.samples == 359
    assert emulated.parity[0]["spike_values_differing"] == 0
    lava = run(path, RunConfig(backend="lava-sim", limit=20, progress=False))
    assert lava.ok and lava.parity[0]["voltage_values_differing"] == 0
