"""Everything netx loads, tna runs: structures of foreign netx files, emulator = Lava bit for bit.

Tiny generated files with a dense layer without a neuron group (netx's default integrator),
1-D dense weights, dense shapes with 3 entries, per-synapse (2-D) delays, biases, a conv-first
net without an input layer; `tna validate` agrees with netx on a corpus of such files, and
`tna run` on a foreign file compares the emulator with Lava when the reference cannot run it.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tna import netx
from tna.errors import TnaError
from tna.netx import Layer, NetxModel, read_net, write_net
from tna.neurons import Cuba, Rf, Sdnn, Unknown
from tna.sim.emulator import emulate, first_difference

NRN = Cuba(i_decay=1024, v_decay=512, vth_mant=20)
# a resonate-and-fire neuron as lava-dl writes it: netx reads sinDecay / cosDecay
RF = Rf(vth_mant=20, type="RF", extra={"sinDecay": 300, "cosDecay": 3900})


def no_neuron_net(rng, delay=None, bias=None) -> NetxModel:
    """input 6 -> dense 8 (CUBA) -> dense 5 without neuron, 1-D weight, shape (5, 1, 1)."""
    return NetxModel(layers=[
        Layer(type="input", shape=(6,)),
        Layer(type="dense", shape=(8,), weight=rng.integers(-64, 128, (8, 6)) * 2.0, neuron=NRN,
              delay=delay),
        Layer(type="dense", shape=(5, 1, 1), weight=rng.integers(-128, 128, 5 * 8) * 2.0,
              bias=bias)])


def test_reader_and_tables_follow_netx(tmp_path):
    model = no_neuron_net(np.random.default_rng(0))
    back = read_net(write_net(model, tmp_path / "n.net"))
    last = back.layers[2]
    assert last.neuron is None and netx.neuron_of(last) == netx.NETX_DEFAULT_NEURON
    assert netx.NETX_DEFAULT_NEURON.vth_mant == 1 << 18 - 1 == 2**17   # netx's precedence
    assert netx.dense_matrix(last).shape == (5, 8) and last.num_neurons == 5
    assert netx.validate(back) == [] and netx.loihi_warnings(back) == []
    with pytest.raises(ValueError, match="does not split"):
        netx.dense_matrix(Layer(type="dense", shape=(3,), weight=np.ones(7)))


def test_skip_layers_and_neuron_fields_follow_netx(tmp_path):
    rng = np.random.default_rng(8)
    sdnn = Sdnn(vth_mant=8)
    enc = NetxModel(layers=[Layer(type="input", shape=(2, 5, 5), neuron=sdnn),
                            _conv((3, 3, 3), rng.integers(-9, 9, (3, 2, 3, 3)) * 2.0,
                                  neuron=dataclasses.replace(NRN, message_bits=3)),
                            Layer(type="flatten", shape=(27, 1, 1)),
                            _dense((4,), rng.integers(1, 9, (4, 27)) * 2.0, neuron=NRN)])
    back = read_net(write_net(enc, tmp_path / "enc.net"))
    assert back.layers[1].neuron.message_bits == 3 and back.layers[0].neuron.message_bits is None
    assert netx.message_bits_of(back.layers[0].neuron) == 16          # netx's SDNN default
    assert netx.skip_layers(back, 0, 5) == (back, 5)
    one, bits = netx.skip_layers(back, 1, 5)
    assert bits == 16 and one.layers[0] == Layer(type="input", shape=(2, 5, 5))
    two, bits = netx.skip_layers(back, 2)
    assert bits == 3 and [layer.type for layer in two.layers] == ["input", "flatten", "dense"]
    assert two.layers[0].shape == (3, 3, 3)
    assert netx.has_input_neuron(back) and not netx.has_input_neuron(one)
    assert netx.validate(back) == [] and netx.validate(back, skip_layers=1) == []
    rf = dataclasses.replace(RF, type="RF_PHASE")
    rf_net = NetxModel(layers=[Layer(type="input", shape=(4,)),
                               _dense((3,), np.ones((3, 4)) * 2, neuron=rf)])
    back = read_net(write_net(rf_net, tmp_path / "rf.net"))
    assert back.layers[1].neuron.extra == RF.extra                    # kept as read
    assert "cannot connect them" in netx.validate(back)[0]


def test_emulator_refuses_other_neuron_types_in_one_line():
    sdnn = Sdnn(vth_mant=4)
    model = NetxModel(layers=[Layer(type="input", shape=(3,)),
                              Layer(type="dense", shape=(2,), weight=np.ones((2, 3)) * 2,
                                    neuron=sdnn)])
    assert netx.validate(model) == []                      # netx builds sigma-delta neurons
    with pytest.raises(TnaError) as e:
        emulate(model, np.zeros((1, 3, 2), dtype=int))
    msg = str(e.value)
    assert "\n" not in msg and "layer/1" in msg and "SDNN" in msg and "--backend lava-sim" in msg


def check(model, x, tmp_path, **kw):
    from tna.lava.harness import record_lava

    path = write_net(model, tmp_path / "net.net")
    lava = record_lava(path, x, **kw)
    emu = emulate(read_net(path), x, record=("spikes", "u", "v"), **kw)
    diff = first_difference(emu, lava)
    assert diff is None, str(diff)
    return lava


@pytest.mark.lava
def test_dense_without_neuron_1d_weight_3_entry_shape_bias(tmp_path):
    rng = np.random.default_rng(1)
    model = no_neuron_net(rng, bias=rng.integers(-30, 30, 5) * 1.0)
    x = rng.integers(0, 2, (2, 6, 6))
    lava = check(model, x, tmp_path)
    assert lava.spikes[1].sum() > 0 and not lava.spikes[2].any()    # the integrator never spikes
    assert np.abs(lava.v[2].numpy()).max() > 0


@pytest.mark.lava
def test_per_synapse_2d_delays(tmp_path):
    rng = np.random.default_rng(2)
    model = NetxModel(layers=[
        Layer(type="input", shape=(6,)),
        Layer(type="dense", shape=(7,), weight=rng.integers(-32, 128, (7, 6)) * 2.0, neuron=NRN,
              delay=rng.integers(0, 4, (7, 6)) * 1.0)])
    lava = check(model, rng.integers(0, 2, (1, 6, 8)), tmp_path, steps=14)
    assert lava.spikes[1].sum() > 0


@pytest.mark.lava
def test_run_foreign_file_on_lava_sim_compares_with_emulator(tmp_path):
    """No metadata, bias and delays (the reference cannot run them): `tna run` compares the
    emulator with Lava, many samples through one network."""
    from tna.deploy import RunConfig, run

    rng = np.random.default_rng(3)
    model = no_neuron_net(rng, delay=rng.integers(0, 3, 8) * 1.0,
                          bias=rng.integers(-30, 30, 5) * 1.0)
    path = write_net(model, tmp_path / "foreign.net")
    np.save(tmp_path / "x.npy", rng.integers(0, 2, (4, 6, 5)))
    result = run(path, RunConfig(input=str(tmp_path / "x.npy"), progress=False,
                                 readout="voltage"))
    assert list(result.outputs) == ["emulator", "lava-sim"] and result.ok, result.summary()
    assert result.outputs["lava-sim"].voltage.any()


@pytest.mark.lava
def test_conv_first_net_without_input_layer(tmp_path):
    """netx takes the input shape from `input_shape=`; tna's Lava backend passes the data's."""
    from tna.lava.runner import run_lava

    rng = np.random.default_rng(4)
    model = NetxModel(layers=[
        Layer(type="conv", shape=(3, 4, 4), weight=rng.integers(-64, 64, (3, 2, 3, 3)) * 2.0,
              neuron=NRN, bias=rng.integers(-10, 10, 3) * 1.0, in_channels=2, out_channels=3,
              kernel_size=(3, 3), stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1),
        Layer(type="flatten", shape=(48, 1, 1)),
        Layer(type="dense", shape=(4,), weight=rng.integers(-128, 128, (4, 48)) * 2.0)])
    path = write_net(model, tmp_path / "c.net")
    x = rng.integers(0, 16, (3, 2, 6, 6, 4))
    assert netx.validate(read_net(path)) == []
    lava = run_lava(path, x, timesteps=4, readout="voltage", input_message_bits=8,
                    progress=False)
    emu = emulate(read_net(path), x, input_message_bits=8, record_layers=(), reset_interval=4 + 2,
                  reset_offset=1)
    assert np.array_equal(lava.voltage, emu.out_voltage.numpy())
    assert np.array_equal(lava.spikes, emu.out_spikes.numpy().astype(int))
    assert lava.voltage.any()


@pytest.mark.lava
@pytest.mark.parametrize("encoder", ["cuba", "sdnn"])
def test_input_layer_with_a_neuron_runs_with_skip_layers(tmp_path, encoder):
    """netx builds an input layer's neuron but leaves net.inp unconnected; by default tna feeds
    the neuron's a_in (tests/lava/test_input_neuron.py). With skip_layers=1, netx's other way,
    tna runs what netx runs: the next layer takes the data, and an SDNN encoder's 16 message
    bits make its input graded."""
    from tna.deploy import RunConfig, run
    from tna.lava.harness import record_lava

    rng = np.random.default_rng(7)
    neuron = NRN if encoder == "cuba" else Sdnn(vth_mant=8)
    model = NetxModel(layers=[
        Layer(type="input", shape=(2, 5, 5), neuron=neuron, weight=np.array(64.0),
              bias=np.array(0.0)),
        _conv((3, 3, 3), rng.integers(-64, 128, (3, 2, 3, 3)) * 2.0, neuron=NRN),
        Layer(type="flatten", shape=(27, 1, 1)),
        _dense((4,), rng.integers(-64, 128, (4, 27)) * 2.0, neuron=NRN)])
    path = write_net(model, tmp_path / "enc.net")
    x = rng.integers(0, 2 if encoder == "cuba" else 12, (3, 2, 5, 5, 6))
    assert netx.validate(read_net(path)) == []
    assert netx.validate(read_net(path), skip_layers=1) == []
    if encoder == "sdnn":          # the emulator runs CUBA input neurons, not sigma-delta ones
        with pytest.raises(TnaError, match="CUBA neurons only.*lava-sim") as e:
            emulate(read_net(path), x)
        assert "\n" not in str(e.value)
    kept, bits = netx.skip_layers(read_net(path), 1, input_message_bits=3)
    assert bits == (0 if encoder == "cuba" else 16)          # the skipped layer's, not ours
    assert [layer.type for layer in kept.layers] == ["input", "conv", "flatten", "dense"]
    assert kept.layers[0].neuron is None and kept.layers[0].shape == (2, 5, 5)
    lava = record_lava(path, x, skip_layers=1)
    emu = emulate(kept, x, input_message_bits=bits, record=("spikes", "u", "v"))
    assert first_difference(emu, lava) is None
    assert lava.spikes[3].any()

    np.save(tmp_path / "x.npy", x)
    result = run(path, RunConfig(input=str(tmp_path / "x.npy"), skip_layers=1,
                                 backend="lava-sim", compare="emulator,lava-sim",
                                 progress=False))
    assert result.ok and result.outputs["lava-sim"].spikes.any(), result.summary()
    with pytest.raises(TnaError, match="keep at least one"):
        netx.skip_layers(read_net(path), 4)


# --------------------------------------------------------------------------- validator vs netx

def _dense(shape, weight, **kw) -> Layer:
    return Layer(type="dense", shape=shape, weight=np.asarray(weight, np.float64), **kw)


def _conv(shape, weight, **kw) -> Layer:
    kw = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1,
          "kernel_size": np.asarray(weight).shape[2:], "in_channels": np.asarray(weight).shape[1],
          "out_channels": np.asarray(weight).shape[0], **kw}
    return Layer(type="conv", shape=shape, weight=np.asarray(weight, np.float64), **kw)


def corpus() -> dict:
    """name -> (layers, whether netx loads and runs it)."""
    rng = np.random.default_rng(5)
    w = lambda *s: rng.integers(-64, 64, s) * 2.0          # noqa: E731
    inp, img = Layer(type="input", shape=(4,)), Layer(type="input", shape=(2, 5, 5))
    sdnn = Sdnn(vth_mant=8)
    return {
        "plain": ([inp, _dense((3,), w(3, 4), neuron=NRN)], True),
        "no_neuron": ([inp, _dense((3,), w(3, 4))], True),
        "weight_1d": ([inp, _dense((3,), w(12), neuron=NRN)], True),
        "shape_3": ([inp, _dense((3, 1, 1), w(3, 4), neuron=NRN)], True),
        "shape_1_input": ([Layer(type="input", shape=(4,)), _dense((2,), w(2, 4))], True),
        "bias_dense": ([inp, _dense((3,), w(3, 4), neuron=NRN, bias=np.arange(3.0))], True),
        "bias_conv": ([img, _conv((3, 3, 3), w(3, 2, 3, 3), neuron=NRN, bias=np.ones(3))], True),
        "delay_axonal": ([inp, _dense((3,), w(3, 4), neuron=NRN, delay=np.arange(3.0))], True),
        "delay_input": ([inp, _dense((3,), w(3, 4), neuron=NRN, delay=np.arange(4.0))], True),
        "delay_2d": ([inp, _dense((3,), w(3, 4), neuron=NRN, delay=np.ones((3, 4)))], True),
        "delay_clipped": ([inp, _dense((3,), w(3, 4), neuron=NRN, delay=np.full(3, 70.0))],
                          True),
        "fractional": ([inp, _dense((3,), w(3, 4) + 0.5, neuron=NRN)], True),
        "dense_rec": ([inp, _dense((3,), w(3, 4), neuron=NRN, weight_rec=w(3, 3))
                       ._replace_type("dense_rec")], True),
        "sdnn": ([inp, _dense((3,), w(3, 4), neuron=sdnn)], True),
        "conv_flatten_dense": ([img, _conv((3, 3, 3), w(3, 2, 3, 3), neuron=NRN),
                                Layer(type="flatten", shape=(27, 1, 1)), _dense((2,), w(2, 27))],
                               True),
        "flatten_shape_ignored": ([img, _conv((3, 3, 3), w(3, 2, 3, 3), neuron=NRN),
                                   Layer(type="flatten", shape=(5, 1, 1)),
                                   _dense((2,), w(2, 27))], True),
        "conv_no_neuron": ([img, _conv((3, 3, 3), w(3, 2, 3, 3))], False),
        "all_zero": ([inp, _dense((3,), np.zeros((3, 4)), neuron=NRN)], False),
        "pool": ([inp, Layer(type="pool", shape=(4,))], False),
        "dense_comp": ([inp, _dense((3,), w(3, 4), neuron=NRN)._replace_type("dense_comp")],
                       False),
        # netx reads an input layer's shape only for a conv after it
        "input_shape_ignored_by_dense": ([inp, _dense((3,), w(3, 5), neuron=NRN)], True),
        "inputs_do_not_chain": ([img, _conv((3, 3, 3), w(3, 2, 3, 3), neuron=NRN),
                                 Layer(type="flatten", shape=(27, 1, 1)),
                                 _dense((2,), w(2, 26))], False),
        "dense_after_conv_no_flatten": ([img, _conv((3, 3, 3), w(3, 2, 3, 3), neuron=NRN),
                                         _dense((2,), w(2, 27))], False),
        "weight_1d_does_not_split": ([inp, _dense((3,), w(13), neuron=NRN)], False),
        "dense_rec_no_weight_rec": ([inp, _dense((3,), w(3, 4), neuron=NRN)
                                     ._replace_type("dense_rec")], False),
        "neuron_type_unknown": ([inp, _dense((3,), w(3, 4), neuron=Unknown(
            vth_mant=1, type="ALIF", extra={"iDecay": 1, "vDecay": 1}))], False),
        "conv_shape_wrong": ([img, _conv((3, 4, 4), w(3, 2, 3, 3), neuron=NRN)], False),
        "conv_channels_wrong": ([img, _conv((3, 3, 3), w(3, 1, 3, 3), neuron=NRN)], False),
        # an input layer's neuron, weight and bias: netx's Input block leaves net.inp
        # unconnected; the data goes into net.in_layer.neuron.a_in (Intel's tutorials), or the
        # layer is skipped with skip_layers=1 (see SKIP)
        "input_neuron_weight_bias": ([Layer(type="input", shape=(4,), neuron=NRN,
                                            weight=np.array(64.0), bias=np.array(3.0)),
                                      _dense((3,), w(3, 4), neuron=NRN)], True),
        "input_sdnn": ([Layer(type="input", shape=(4,), neuron=sdnn),
                        _dense((3,), w(3, 4), neuron=NRN)], True),
        "input_neuron_not_skipped": ([Layer(type="input", shape=(4,), neuron=NRN),
                                      _dense((3,), w(3, 4), neuron=NRN)], True),
        "input_weight_bias_no_neuron": ([Layer(type="input", shape=(4,), weight=np.array(2.0),
                                               bias=np.array(1.0)),
                                         _dense((3,), w(3, 4), neuron=NRN)], True),
        # netx 0.6 builds RF neurons, but its dense and conv blocks connect a_in, which RF
        # neurons lack (they take real and imaginary input: dense_comp, which netx cannot load)
        "rf": ([inp, _dense((3,), w(3, 4), neuron=RF)], False),
        "rf_phase": ([inp, _dense((3,), w(3, 4), neuron=dataclasses.replace(
            RF, type="RF_PHASE"))], False),
    }


# corpus files netx is asked to load with skip_layers=1 (the other way Intel's tutorials load nets whose
# input layer has a neuron); tna validate is told the same
SKIP = {"input_sdnn": 1}


def _replace_type(self, layer_type):
    import dataclasses
    return dataclasses.replace(self, type=layer_type)


Layer._replace_type = _replace_type


def _netx_runs(paths, at_once=3, limit_s=45) -> list:
    """Whether unmodified netx builds each network and Lava runs it for two steps.

    Each in a forked child with a time limit (a Lava process that fails mid-run can leave its
    parent waiting forever), `at_once` children at a time."""
    import multiprocessing
    import time

    from tna.lava.info import prepare_lava_import
    prepare_lava_import()
    from tna.models.snn import import_slayer
    import_slayer()          # import lava-dl once here, not in every child
    from lava.lib.dl import netx as _  # noqa: F401
    from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: F401
    ctx = multiprocessing.get_context("fork")
    results = []
    for lo in range(0, len(paths), at_once):
        children = [ctx.Process(target=_build_and_run, args=(str(p), SKIP.get(p.stem, 0)))
                    for p in paths[lo:lo + at_once]]
        try:
            for child in children:
                child.start()
            deadline = time.time() + limit_s
            for child in children:
                child.join(max(0.0, deadline - time.time()))
                results.append(child.exitcode == 0)      # None while it still runs
        finally:
            for child in children:
                if child.is_alive():          # out of time, or the test was interrupted
                    _end_group(child)
    return results


def _end_group(child) -> None:
    """SIGKILL a `_build_and_run` child with the Lava processes it forked (its process group)."""
    import os
    import signal

    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:      # it has not made its group yet, so has forked nothing
        child.kill()
    child.join()


def _build_and_run(path, skip_layers=0) -> None:
    import contextlib
    import io
    import os

    from lava.lib.dl import netx as lava_netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc import io as lava_io

    from tna.lava.runner import _shutdown

    os.setpgid(0, 0)         # a group of its own, which Lava's processes join: see _end_group
    net = None
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            net = lava_netx.hdf5.Network(net_config=path, skip_layers=skip_layers)
            # an input neuron (netx's Input block) is fed on its a_in, as Intel's tutorials do
            port = net.inp
            if type(net.in_layer).__name__ == "Input":
                port = net.in_layer.neuron.a_in
            source = lava_io.source.RingBuffer(data=np.ones((*port.shape, 2), dtype=int))
            source.s_out.connect(port)
            net.run(condition=RunSteps(num_steps=2), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
            net.stop()
    except BaseException:   # noqa: BLE001 - any failure means netx does not run the file
        # A run that fails once Lava has started (conv_channels_wrong) leaves Lava's
        # shared-memory server up, and os._exit skips the exit handlers that would end it: it
        # outlived the test run (issue 34). net.stop() would wait forever on the dead processes.
        try:
            if net is not None:
                _shutdown(net, clean=False)
        finally:
            os._exit(1)
    os._exit(0)


@pytest.mark.lava
def test_validator_agrees_with_netx_on_a_corpus(tmp_path):
    items = corpus()
    paths = [write_net(NetxModel(layers=layers), tmp_path / f"{name}.net")
             for name, (layers, _) in items.items()]
    ran = dict(zip(items, _netx_runs(paths)))
    assert ran == {name: runs for name, (_, runs) in items.items()}, "the corpus is wrong"
    disagree = []
    for path, (name, (_, runs)) in zip(paths, items.items()):
        problems = netx.validate(read_net(path), skip_layers=SKIP.get(name, 0))
        if (problems == []) != runs:
            disagree.append(f"{name}: netx {'runs' if runs else 'fails'}, validate {problems}")
    assert not disagree, "\n".join(disagree)


@pytest.mark.lava
@pytest.mark.parametrize("kind", ["sdnn", "dense_rec"])
def test_lava_sim_runs_what_only_netx_runs(tmp_path, kind):
    """SDNN neurons and dense_rec layers: `tna run` runs them on lava-sim as netx does, alone
    (neither the reference nor the emulator can), and the emulator says so in one line."""
    from tna.deploy import RunConfig, run

    rng = np.random.default_rng(6)
    w = rng.integers(32, 64, (3, 4)) * 2.0
    layer = {"sdnn": Layer(type="dense", shape=(3,), weight=w, neuron=Sdnn(vth_mant=0)),
             "dense_rec": Layer(type="dense_rec", shape=(3,), weight=w, neuron=NRN,
                                weight_rec=rng.integers(-64, 64, (3, 3)) * 2.0)}[kind]
    path = write_net(NetxModel(layers=[Layer(type="input", shape=(4,)), layer]),
                     tmp_path / f"{kind}.net")
    np.save(tmp_path / "x.npy", rng.integers(0, 2, (3, 4, 5)))
    result = run(path, RunConfig(input=str(tmp_path / "x.npy"), progress=False))
    assert list(result.outputs) == ["lava-sim"] and result.outputs["lava-sim"].spikes.any()
    with pytest.raises(TnaError, match="--backend lava-sim"):
        emulate(read_net(path), np.zeros((1, 4, 2), dtype=int))
