"""A neuron type is one module: a throw-away type, registered here alone, is read, written,
validated and emulated; the consumers that cannot run it refuse it in one line."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from tna import netx, neurons
from tna.errors import TnaError
from tna.netx import Layer, NetxModel, read_net, write_net
from tna.neurons import Cuba, Neuron, Unknown
from tna.sim import emulate


@dataclass
class GainIf(Neuron):
    """Toy non-leaky integrate-and-fire: u = vGain * a (one step), v += u, spike when
    v > vThMant << 6, then v = 0. With vGain 1 it is CUBA with iDecay 4096, vDecay 0."""
    TYPES = ("GAINIF",)
    FIELDS = {"vThMant": "vth_mant", "vGain": "gain"}
    vth_mant: int
    gain: int

    def stepper(self):
        vth, gain = self.vth_mant << neurons.ACT_SHIFT, self.gain

        def step(u, v, a6, bias, out):
            u = a6 * gain
            v = v + u + (0 if bias is None else bias)
            torch.gt(v, vth, out=out)
            return u, v.masked_fill(out, 0)
        return step


@pytest.fixture
def gain_if():
    neurons.register_neuron(GainIf)
    yield GainIf
    neurons.unregister_neuron(GainIf)


def _net(neuron, w) -> NetxModel:
    return NetxModel(layers=[Layer(type="input", shape=(8,)),
                             Layer(type="dense", shape=(5,), weight=w, neuron=neuron,
                                   in_features=8, out_features=5)])


def test_a_registered_neuron_type_is_read_written_and_emulated(gain_if, tmp_path):
    rng = np.random.default_rng(3)
    w = rng.integers(-30, 31, (5, 8)) * 2.0
    x = torch.as_tensor(rng.integers(0, 2, (16, 8, 6)))
    path = tmp_path / "toy.net"
    write_net(_net(GainIf(vth_mant=40, gain=2), w), path)
    back = read_net(path)
    assert back.layers[1].neuron == GainIf(vth_mant=40, gain=2)      # its fields, via the registry
    assert netx.validate(back) == []
    toy = emulate(back, x, record=("spikes", "v"))
    same = emulate(_net(Cuba(i_decay=4096, v_decay=0, vth_mant=40), 2 * w), x,
                   record=("spikes", "v"))
    assert toy.spikes[1].sum() > 0
    assert torch.equal(toy.spikes[1], same.spikes[1]) and torch.equal(toy.v[1], same.v[1])


def test_consumers_without_the_type_refuse_it_in_one_line(gain_if):
    from tna.nir.write import to_graph
    from tna.reference import unsupported
    model = _net(GainIf(vth_mant=40, gain=2), np.full((5, 8), 2.0))
    assert unsupported(model) == "layer/1: the reference runs CUBA neurons only, not 'GAINIF'"
    with pytest.raises(TnaError, match=r"^layer/1: 'GAINIF' neurons have no NIR form here"):
        to_graph(model)


def test_an_unregistered_type_is_kept_as_read_and_refused(tmp_path):
    write_net(_net(Unknown(vth_mant=40, type="GAINIF", extra={"vGain": 2}), np.full((5, 8), 2.0)),
              tmp_path / "toy.net")
    back = read_net(tmp_path / "toy.net")
    assert back.layers[1].neuron == Unknown(vth_mant=40, type="GAINIF", extra={"vGain": 2})
    assert netx.validate(back) == [
        "layer/1 (dense): netx cannot build neuron type 'GAINIF' (it builds CUBA, LOIHI, SDNN "
        "and RF types)"]
    with pytest.raises(TnaError, match="the emulator runs CUBA neurons only, not 'GAINIF'"):
        emulate(back, torch.zeros(1, 8, 3))
