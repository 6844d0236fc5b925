"""Speed of the bit-exact emulator (tna.sim.emulate) against Lava's simulator and slayer eval.

Net: a conv-small CUBA net, 16c3-32c3s2-64c3s2-256-10 on 1x28x28, random even integer weights in
[-256, 254], threshold 0.5 (vThMant 32), current decay 0.25, voltage decay 0.03, readout layer
non-spiking (vThMant 2**17-1). Input: Fashion-MNIST test images quantised to 0..15 (graded,
input_message_bits=8) when /usr/share/datasets/fashion-mnist exists, else random 4-bit values.
T=5 steps per sample plus L=5 drain steps; layer k resets at the step its data arrives
(reset_interval=T+L, reset_offset=1), as one compiled Lava network with samples concatenated needs.

    .venv/bin/python benchmarks/emulator_speed.py [--samples 10000] [--lava-samples 20] \
        [--slayer-samples 10000]

Goals: emulator >= 100x Lava sim samples/s; emulator time <= 1.5x slayer eval time.
Also checks parity: Lava's outputs for the concatenated samples equal the emulator's, and the
emulator's aligned outputs equal slayer's no-shift outputs (spikes; voltage * 4096).
"""
from __future__ import annotations

import argparse
import gzip
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tna.netx import Layer, NetxModel, write_net
from tna.neurons import Cuba
from tna.sim.emulator import emulate

FMNIST = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
T = 5                       # input steps per sample
INPUT_BITS = 4              # pixels quantised to 0..15
HIDDEN = Cuba(i_decay=1024, v_decay=123, vth_mant=32)
READOUT = Cuba(i_decay=1024, v_decay=123, vth_mant=2**17 - 1)


def conv_layer(rng, in_shape, out_c, stride, std) -> Layer:
    c, h, w = in_shape
    oh, ow = (h - 3) // stride + 1, (w - 3) // stride + 1
    weight = np.clip(np.round(rng.normal(0, std, (out_c, c, 3, 3))), -128, 127) * 2
    return Layer(type="conv", shape=(out_c, oh, ow), weight=weight.astype(np.float32),
                 neuron=HIDDEN, in_channels=c, out_channels=out_c, kernel_size=(3, 3),
                 stride=(stride, stride), padding=(0, 0), dilation=(1, 1), groups=1)


def dense_layer(rng, n_in, n_out, std, nrn) -> Layer:
    weight = np.clip(np.round(rng.normal(0, std, (n_out, n_in))), -128, 127) * 2
    return Layer(type="dense", shape=(n_out,), weight=weight.astype(np.float32), neuron=nrn,
                 in_features=n_in, out_features=n_out)


def build_net(seed=0) -> NetxModel:
    rng = np.random.default_rng(seed)
    layers = [Layer(type="input", shape=(1, 28, 28)),
              conv_layer(rng, (1, 28, 28), 16, 1, 3.0),
              conv_layer(rng, (16, 26, 26), 32, 2, 6.0),
              conv_layer(rng, (32, 12, 12), 64, 2, 5.0),
              Layer(type="flatten", shape=(64 * 5 * 5, 1, 1)),
              dense_layer(rng, 1600, 256, 4.0, HIDDEN),
              dense_layer(rng, 256, 10, 6.0, READOUT)]
    return NetxModel(layers=layers)


def load_inputs(n, seed=0) -> tuple[np.ndarray, str]:
    """(n, 1, 28, 28, T) integers 0..15, repeated over T (direct encoding)."""
    if FMNIST.exists():
        with gzip.open(FMNIST) as f:
            img = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n]
        src = "Fashion-MNIST test images >> 4"
    else:
        img = np.random.default_rng(seed).integers(0, 256, (n, 1, 28, 28))
        src = "random 4-bit values"
    x = (img.astype(np.int64) >> (8 - INPUT_BITS))
    return np.repeat(x[..., None], T, axis=-1), src


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def slayer_net(model: NetxModel):
    """The same net as slayer CUBA blocks with delay_shift=False (the 'aligned' timeline)."""
    from lava.lib.dl import slayer

    blocks = []
    for layer in model.layers:
        if layer.type == "input":
            continue
        if layer.type == "flatten":
            blocks.append(slayer.block.cuba.Flatten())
            continue
        n = layer.neuron
        params = {"threshold": n.vth_mant / 64, "current_decay": n.i_decay / 4096,
                  "voltage_decay": n.v_decay / 4096, "requires_grad": False}
        w = torch.as_tensor(layer.weight / 64, dtype=torch.float32)
        if layer.type == "conv":
            b = slayer.block.cuba.Conv(params, layer.in_channels, layer.out_channels, 3,
                                       stride=layer.stride[0], weight_scale=1,
                                       pre_hook_fx=None, delay_shift=False)
        else:
            b = slayer.block.cuba.Dense(params, layer.in_features, layer.out_features,
                                        weight_scale=1, pre_hook_fx=None, delay_shift=False)
        b.synapse.weight.data = w.reshape(b.synapse.weight.shape)
        blocks.append(b)
    return torch.nn.ModuleList(blocks)


def run_slayer(blocks, x: torch.Tensor):
    """Spikes and voltage of the last block, (N, 10, T)."""
    for b in blocks[:-1]:
        x = b(x)
    z = blocks[-1].synapse(x)
    _, voltage = blocks[-1].neuron.dynamics(z)
    return blocks[-1].neuron.spike(voltage), voltage


def run_lava_concatenated(path: Path, x: np.ndarray, window: int):
    """One compiled Lava network, samples concatenated in time; last layer's v and spikes."""
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc import io
    from lava.proc.monitor.process import Monitor

    n = x.shape[0]
    data = np.zeros((28, 28, 1, n * window), dtype=np.int64)       # Lava layout (W, H, C, t)
    for i in range(n):
        data[..., i * window:i * window + T] = x[i].transpose(2, 1, 0, 3)
    t0 = time.perf_counter()
    net = netx.hdf5.Network(net_config=str(path), input_message_bits=8,
                            reset_interval=window, reset_offset=1)
    source = io.source.RingBuffer(data=data)
    source.s_out.connect(net.inp)
    mon_v, mon_s = Monitor(), Monitor()
    out = net.layers[-1].neuron
    mon_v.probe(target=out.v, num_steps=n * window)
    mon_s.probe(target=out.s_out, num_steps=n * window)
    try:
        net.run(condition=RunSteps(num_steps=n * window),
                run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        v = np.asarray(mon_v.get_data()[out.name]["v"])               # (steps, 10)
        s = np.asarray(mon_s.get_data()[out.name]["s_out"])
    finally:
        net.stop()
    seconds = time.perf_counter() - t0
    return seconds, v, s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=10000, help="emulator samples")
    ap.add_argument("--lava-samples", type=int, default=20, help="Lava sim samples (concatenated)")
    ap.add_argument("--slayer-samples", type=int, default=10000, help="slayer eval samples")
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args(argv)
    torch.set_grad_enabled(False)
    if args.threads:
        torch.set_num_threads(args.threads)

    model = build_net()
    n_layers = 5
    window = T + n_layers
    x, src = load_inputs(max(args.samples, args.lava_samples, args.slayer_samples))
    print(f"net 16c3-32c3s2-64c3s2-256-10, T={T} + {n_layers} drain steps; input: {src}; "
          f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.1f}")

    # 1. emulator, all samples (first, so ru_maxrss measures it before Lava/slayer are imported)
    xe = torch.as_tensor(x[:args.samples])
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    res = emulate(model, xe, input_message_bits=8, record_layers=(), reset_interval=window,
                  reset_offset=1, batch_size=args.batch_size)
    t_emu = time.perf_counter() - t0
    peak = peak_rss_mb()
    emu_rate = args.samples / t_emu
    # The full raw timeline (all T + L steps of every layer, last layer recorded), on fewer samples.
    n_full = min(args.samples, 2000)
    t0 = time.perf_counter()
    full = emulate(model, xe[:n_full], input_message_bits=8, record_layers="last",
                   reset_interval=window, reset_offset=1, batch_size=args.batch_size)
    t_full = time.perf_counter() - t0
    full_ok = (torch.equal(full.out_voltage, res.out_voltage[:n_full])
               and torch.equal(full.out_spikes, res.out_spikes[:n_full]))
    acts = emulate(model, xe[:200], input_message_bits=8, reset_interval=window, reset_offset=1)
    activity = [f"{acts.spikes[i][..., n_layers - 1:].float().mean().item():.1%}"
                for i in sorted(acts.spikes)[:-1]]
    print(f"hidden-layer spike activity (200 samples): {' '.join(activity)}")

    # 2. Lava simulator, a few samples concatenated in one compiled network
    with tempfile.TemporaryDirectory() as tmp:
        path = write_net(model, Path(tmp) / "bench.net")
        n_lava = args.lava_samples
        t_lava, lv, ls = run_lava_concatenated(path, x[:n_lava], window)
    lava_rate = n_lava / t_lava
    lava_v = lv.reshape(n_lava, window, 10)[:, n_layers:n_layers + T].transpose(0, 2, 1)
    lava_s = ls.reshape(n_lava, window, 10)[:, n_layers:n_layers + T].transpose(0, 2, 1)
    lava_ok = (np.array_equal(lava_v, res.out_voltage[:n_lava].numpy())
               and np.array_equal(lava_s.astype(bool), res.out_spikes[:n_lava].numpy()))

    # 3. slayer eval (no-shift blocks), batched
    blocks = slayer_net(model)
    xs = torch.as_tensor(x[:args.slayer_samples], dtype=torch.float32)
    t0 = time.perf_counter()
    outs = [run_slayer(blocks, xs[i:i + args.batch_size])
            for i in range(0, len(xs), args.batch_size)]
    t_slayer = time.perf_counter() - t0
    slayer_rate = args.slayer_samples / t_slayer
    n_cmp = min(args.samples, args.slayer_samples)
    s_sp = torch.cat([o[0] for o in outs])[:n_cmp].bool()
    s_v = (torch.cat([o[1] for o in outs])[:n_cmp] * 4096).round().to(torch.int64)
    spike_mis = int((s_sp != res.out_spikes[:n_cmp]).sum())
    volt_mis = int((s_v != res.out_voltage[:n_cmp].to(torch.int64)).sum())
    pred_agree = float((s_v.sum(-1).argmax(-1) == res.out_voltage[:n_cmp].sum(-1).argmax(-1))
                       .float().mean())

    rows = [("emulator, aligned output", args.samples, t_emu, emu_rate),
            ("emulator, full raw timeline", n_full, t_full, n_full / t_full),
            ("Lava sim, concatenated", n_lava, t_lava, lava_rate),
            ("slayer eval, batched", args.slayer_samples, t_slayer, slayer_rate)]
    print(f"\n{'runner':<28}{'samples':>9}{'seconds':>10}{'samples/s':>12}{'ms/sample':>11}")
    for name, n, t, r in rows:
        print(f"{name:<28}{n:>9}{t:>10.2f}{r:>12.1f}{1000 / r:>11.3f}")
    t_emu_10k = 10000 / emu_rate
    print(f"\nemulator / Lava speed:   {emu_rate / lava_rate:8.0f}x   (goal >= 100x)")
    print(f"emulator / slayer time:  {slayer_rate / emu_rate:8.2f}    (goal <= 1.5)")
    print(f"emulator 10k samples:    {t_emu_10k:8.1f} s; peak RSS {peak:.0f} MB "
          f"(+{peak - rss0:.0f} MB while emulating, batch {args.batch_size})")
    print(f"windowed == full-timeline emulation ({n_full} samples): {'yes' if full_ok else 'NO'}")
    print(f"parity Lava == emulator ({n_lava} samples, v and spikes): {'yes' if lava_ok else 'NO'}")
    print(f"emulator aligned vs slayer no-shift ({n_cmp} samples): {spike_mis} spike and "
          f"{volt_mis} voltage mismatches of {s_sp.numel()}; argmax(sum v) agrees {pred_agree:.2%}")
    return 0 if lava_ok and full_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
