"""A minimal Lava runner that records what `emulate` records, for parity checks.

`record_lava(path, inputs)` builds the Lava network once per sample with tna's netx loader
(`tna.lava.net`; `loader='netx'`: unmodified `lava.lib.dl.netx.hdf5.Network`), feeds the
sample through a `RingBuffer` source (zero after the sample's T steps), runs it under
`Loihi2SimCfg(select_tag='fixed_pt')` with lava-nc's models (conv: plus the weight bits tna's
loader sets, `tna.lava.procs.STOCK_MODELS`) and records every neuron layer's spikes, u and v with
`Monitor`s. The result is an `Recording` in slayer layout, directly comparable with
`emulate(...)` through `first_difference`. Lava is imported inside the function.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch

from tna.netx import read_net
from tna.netx import skip_layers as skip
from tna.sim.emulator import RECORDABLE, Recording, plan


def _to_lava(sample: np.ndarray) -> np.ndarray:
    """(C, H, W, S) -> (W, H, C, S); (F, S) unchanged."""
    return sample.transpose(2, 1, 0, 3) if sample.ndim == 4 else sample


def _from_lava(data: np.ndarray) -> np.ndarray:
    """Monitor data (S, W, H, C) or (S, F) -> (C, H, W, S) or (F, S)."""
    return data.transpose(3, 2, 1, 0) if data.ndim == 4 else data.T


def record_lava(net_path, inputs, *, input_message_bits: int = 0, reset_interval: int | None = None,
             reset_offset: int = 0, steps: int | None = None,
             record=RECORDABLE, loader: str = "tna", skip_layers: int = 0) -> Recording:
    """Run the netx file on Lava's fixed-point CPU simulator, one compiled network per sample.

    inputs: integers in slayer layout (N, C, H, W, T) or (N, F, T); a dense first layer gets the
    sample flattened in (C, H, W) order. skip_layers: as netx.hdf5.Network's; the result is
    comparable with `emulate` on `tna.netx.skip_layers(model, skip_layers)`. Other arguments as
    `emulate`. Slow (~0.5 s per sample plus ~1 ms per step and layer): meant for tests on tiny
    nets.
    """
    from lava.proc import io

    from tna.lava.net import load_network

    net_path = Path(net_path)
    x = np.asarray(inputs.cpu() if isinstance(inputs, torch.Tensor) else inputs).astype(np.int64)
    model, input_message_bits = skip(read_net(net_path), skip_layers, input_message_bits)
    stages = plan(model, tuple(x.shape[1:-1]), input_message_bits=input_message_bits,
                  reset_offset=reset_offset, loader=loader)
    timesteps = x.shape[-1]
    starts = list(itertools.accumulate(st.lag for st in stages))   # as in emulate
    steps = timesteps + starts[-1] if steps is None else int(steps)
    per: dict = {name: {st.index: [] for st in stages} for name in record}
    into_neuron = stages[0].kind == "input"         # Intel's tutorials' way: onto a_in
    for sample in x:
        if stages[0].kind == "dense" or (into_neuron and len(stages[0].shape) == 1):
            sample = sample.reshape(-1, timesteps)
        data = np.zeros(sample.shape[:-1] + (steps,), dtype=np.int64)
        data[..., :min(timesteps, steps)] = sample[..., :steps]
        net = load_network(net_path, loader, input_message_bits=input_message_bits,
                           reset_interval=reset_interval, reset_offset=reset_offset,
                           skip_layers=skip_layers)
        source = io.source.RingBuffer(data=_to_lava(data))
        source.s_out.connect(net.in_layer.neuron.a_in if into_neuron else net.inp)
        for (index, name), arr in _probe_run(net, stages, record, steps).items():
            per[name][index].append(arr)
    result = Recording(steps=steps, timesteps=timesteps, offset=starts[-1],
                            out_layer=stages[-1].index,
                            starts={st.index: k for st, k in zip(stages, starts)})
    for name, layers in per.items():
        setattr(result, name, {i: torch.as_tensor(np.stack(v)) for i, v in layers.items()})
    if steps >= timesteps + starts[-1] and "spikes" in record and "v" in record:
        sl = slice(starts[-1], starts[-1] + timesteps)
        result.out_spikes = result.spikes[stages[-1].index][..., sl]
        result.out_voltage = result.v[stages[-1].index][..., sl]
    return result


def _probe_run(net, stages, record, steps: int) -> dict:
    """Run a loaded netx network for `steps` steps; {(layer index, name): (C, ..., steps) array}."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.monitor.process import Monitor

    from tna.lava.runner import _shutdown
    from tna.lava.procs import STOCK_MODELS

    monitors = []
    for st, block in zip(stages, net.layers):
        for name in record:
            mon = Monitor()
            target = block.neuron.s_out if name == "spikes" else getattr(block.neuron, name)
            mon.probe(target=target, num_steps=steps)
            monitors.append((st, name, mon, target))
    ran = False
    try:
        net.run(condition=RunSteps(num_steps=steps),
                run_cfg=Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=dict(STOCK_MODELS)))
        ran = True
        out = {}
        for st, name, mon, target in monitors:
            arr = _from_lava(np.asarray(mon.get_data()[target.process.name][target.name]))
            out[st.index, name] = arr.astype(bool) if name == "spikes" else arr.astype(np.int32)
        return out
    finally:
        try:
            _shutdown(net, clean=ran)  # net.stop() after a failed run waits forever
        finally:
            net.net_config.f.close()  # netx keeps the HDF5 file open
