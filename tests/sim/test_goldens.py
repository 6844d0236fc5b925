"""emulate() reproduces Intel's netx ground-truth files shipped in the lava-dl wheel.

pilotnet_lif: per-layer spikes, u and v of a 5-conv + 3-dense CUBA net, recorded (by Intel, on
Loihi) with reset_interval=16, reset_offset=1 and the input layer's spikes given as input-s.npy.
Conventions of those files: layout (W, H, C, step); a neuron's v is stored as 128 at a step where it
spikes (Lava stores 0 after the reset); they follow this input only within the first reset window,
so layer k (1-based) is compared for raw steps j < 16 + k. fc-3 is left out: its file comes from a
different run (25 steps, float) and does not follow fc-2's spikes.
ntidigits: three dense layers with axonal delays; output.npy[:, j] holds the last layer's spikes
of Lava step j (raw index j - 1), for 3000 steps.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tna.netx import NetxModel, read_net
from tna.sim.emulator import emulate

GTS = None
try:
    import tests.lava.lib.dl.netx as _netx_tests            # lava-dl's wheel ships them
    GTS = Path(_netx_tests.__file__).parent / "gts"
except ImportError:
    pass

needs_gts = pytest.mark.skipif(GTS is None or not GTS.is_dir(),
                               reason="lava-dl's netx golden files are not installed")
PILOTNET_LAYERS = ["conv-0", "conv-1", "conv-2", "conv-3", "conv-4", "fc-0", "fc-1", "fc-2"]
SPIKE_MARK = 128                  # v recorded at a spiking step in Intel's files


def _slayer(a: np.ndarray) -> np.ndarray:
    return a.transpose(2, 1, 0, 3) if a.ndim == 4 else a


@needs_gts
def test_pilotnet_lif_per_layer_u_v_spikes():
    root = GTS / "pilotnet_lif"
    model = read_net(root / "network.net")
    # The input layer's neuron is replaced by its recorded spikes (netx cannot feed it).
    model.layers[0] = dataclasses.replace(model.layers[0], neuron=None, weight=None, bias=None)
    x = _slayer(np.load(root / "input-s.npy")).astype(np.int64)[None]
    res = emulate(model, x, record=("spikes", "u", "v"), reset_interval=16, reset_offset=1,
                  steps=x.shape[-1])
    neuron_layers = [i for i, layer in enumerate(model.layers) if layer.type in ("conv", "dense")]
    assert len(neuron_layers) == len(PILOTNET_LAYERS) + 1
    for k, (index, name) in enumerate(zip(neuron_layers, PILOTNET_LAYERS), start=1):
        window = slice(0, 16 + k)
        gs = _slayer(np.load(root / f"{name}.npy"))[..., window]
        gu = _slayer(np.load(root / f"{name}-u.npy"))[..., window]
        gv = _slayer(np.load(root / f"{name}-v.npy"))[..., window]
        s = res.spikes[index][0].numpy()[..., window]
        u = res.u[index][0].numpy()[..., window]
        v = res.v[index][0].numpy()[..., window]
        assert gs.sum() > 0, name
        assert np.array_equal(s, gs), f"{name} spikes: {(s != gs).sum()} differ"
        assert np.array_equal(u, gu), f"{name} u: {(u != gu).sum()} differ"
        assert np.all(gv[gs] == SPIKE_MARK) and np.all(v[s] == 0), name
        assert np.array_equal(v[~gs], gv[~gs]), f"{name} v: {(v[~gs] != gv[~gs]).sum()} differ"


@needs_gts
def test_pilotnet_input_neuron_fed_on_a_in_reproduces_intels_input_spikes():
    """Intel's pilotnet_lif files hold the encoded image (image.npy, W x H x C) and the input
    layer's spikes recorded with it (input-s.npy, 24 steps, resets every 16): the input neuron
    fed the image on a_in every step, reset where each window begins (netx reset_offset 0,
    tna.netx.data_reset_offset), gives the same 846,948 spikes, every one."""
    root = GTS / "pilotnet_lif"
    model = read_net(root / "network.net")
    image = _slayer(np.load(root / "image.npy")[..., None])[..., 0]           # (C, H, W)
    x = np.repeat(image[..., None], 24, -1)[None].astype(np.int64)
    res = emulate(model, x, record=("spikes",), record_layers=[0], steps=24,
                  reset_interval=16, reset_offset=0)
    got = res.spikes[0][0].numpy()
    want = _slayer(np.load(root / "input-s.npy")).astype(bool)
    assert want.sum() == 846948 and np.array_equal(got, want)


@needs_gts
def test_ntidigits_axonal_delays():
    root = GTS / "ntidigits"
    model = read_net(root / "ntidigits.net")
    assert model.layers[5].type == "average"          # netx cannot load it either
    model = NetxModel(layers=model.layers[:5])
    assert any(layer.delay is not None and layer.delay.max() > 0 for layer in model.layers)
    x = np.load(root / "input.npy").astype(np.int64)[None]
    gt = np.load(root / "output.npy").astype(bool)
    res = emulate(model, x, steps=x.shape[-1], record_layers="last")
    out = res.spikes[4][0].numpy()
    assert gt.sum() > 10000
    assert np.array_equal(out[:, :-1], gt[:, 1:])
    assert not gt[:, 0].any()
