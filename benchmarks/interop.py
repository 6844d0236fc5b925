"""tna <-> snnTorch and Norse through NIR, with the real libraries: do the nets compute the same?

(a) tna -> NIR -> clients. A tna conv-small net trained on Fashion-MNIST (--run, default
    runs/interop-fm in the repository; trained with `tna train --dataset fashion-mnist
    --train-limit 6000 --epochs 3 --ternary-after 2` when it has no best.pt) is exported with
    defaults (`tna export` to .net, then to .nir, portable form, dt 1e-4). snnTorch
    (`snntorch.import_nir.import_from_nir`) and Norse
    (`norse.torch.from_nir(graph, dt=graph.metadata["dt"])`) load the graph and are fed
    tna's own encoded input (direct encoding: integers 0..15, the same value for T = 5 steps), one
    sample at a time and batched (after import, `start_dim = 1` on every torch.nn.Flatten: both
    build Flatten(0) from NIR's batch-free Flatten). Prediction = argmax of the readout layer's
    membrane summed over T (it never spikes), as tna's reference. Reported per client and mode:
    agreement with tna's reference predictions, accuracy, spikes per layer (mean per sample)
    against the reference's, the largest readout difference relative to the readout's range.

(b) clients -> NIR -> tna. Two nets written as their libraries' users write them and trained
    briefly on sklearn's 8x8 digits (1400 train, 397 test images), rate-coded input (binary
    spikes, so tna's side is exact with input_message_bits=0), T = 25, readout = output spike
    count:
      snnTorch: Conv2d(1, 16, 3, padding=1) (bias on) -> AvgPool2d(2) -> Leaky -> Flatten ->
        Linear(256, 10) -> Leaky; beta 0.9, threshold 1, reset_mechanism="zero", fast_sigmoid
        surrogate, Adam; loss snntorch.functional.ce_count_loss() and (a second net)
        mse_count_loss(correct_rate=0.8, incorrect_rate=0.2); spikegen.rate input. Per-neuron beta
        and threshold tensors: export_to_nir needs them (it writes shapes from them).
      Norse: Linear(64, 128) (bias on) -> LIFBoxCell -> Linear(128, 10) -> LIFBoxCell in a
        SequentialState, default neuron parameters given per neuron (norse.torch.to_nir writes
        them as given and nir.write cannot store 0-d arrays), PoissonEncoder(T, f_max=1000),
        cross-entropy on spike counts, Adam.
    Each is exported with its own exporter (snntorch.export_nir.export_to_nir(net, sample,
    ignore_dims=[0]); norse.torch.to_nir(model, sample)), imported by tna (`tna.nir.import_nir`,
    dt 1e-4 for snnTorch, 1e-6 for Norse at its dt of 1 ms since its to_nir writes tau = dt /
    tau_inv), and run with tna's reference and its bit-exact emulator on --client-samples
    rate-coded test samples (the 397 test images, drawn again as often as needed). Reported:
    prediction agreement with the client's own forward on all samples and on the samples that
    are not argmax ties of the client's spike counts, the number of ties, spikes per layer client
    vs tna (relative difference), accuracy of both, reference == emulator (output spikes and
    voltage, and every layer's spike count), and tna's quantisation per layer.

    .venv/bin/python benchmarks/interop.py [--run DIR | --net M.NET] [--samples 500]
                                      [--client-samples 2000] [--epochs 20] [--quick]
                                      [--only a|b] [--threads 1]

The clients compute the graph's float semantics, tna's reference Lava's fixed point (decays
rounded toward zero each step): (a) also compares the clients with tna.nir.simulate (the same
float semantics, run by tna), and prints tna's readout margin where a prediction differs.

Goals: (a) 100% agreement in both modes for both clients, or differences only where tna's
readout is a near tie; spikes per layer within 1%;
(b) >= 99% agreement on non-tie samples, spikes per layer within 1%, reference == emulator.
--quick: (a) on 100 samples, (b) without the mse_count_loss net. snnTorch and Norse are test-only
dependencies of tna (pip install snntorch norse).

What differs in (b) is tna's 8-bit weight grid (a step of 2/vThMant of the threshold, vThMant =
floor(254 / largest |weight| / threshold)): in a float re-run of tna's integers, exact weights
reproduce the client's spikes and rounded ones flip about 0.4% of the hidden spikes, whose effect
reaches the output; the differing predictions sit at client margins of 1-2 spikes. The
mse_count_loss net misses the 99% goal: it trains all ten outputs to fire (20% of steps for the
wrong classes), its output weights grow to 1.5x the threshold (vThMant 170, the coarsest grid),
and each flipped hidden spike moves several output counts.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_RUN = str(ROOT / "runs" / "interop-fm")
T_CLIENT = 25                 # steps per sample of the client nets (snnTorch's tutorials)
SNN_DT, NORSE_DT = 1e-4, 1e-6   # the dt tna reads each exporter's graph with (see the docstring)


@contextlib.contextmanager
def quiet():
    """Silence the clients' prints (snnTorch's importer prints every weight scaling) and logs."""
    level = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logging.disable(level)


def rel(a: float, b: float) -> str:
    """(b - a) / a as a signed percentage."""
    return f"{(b - a) / a:+.2%}" if a else ("+0.00%" if b == a else "inf")


def counts_line(names, client, tna) -> str:
    return "  ".join(f"{n} {c:.1f}/{t:.1f} ({rel(c, t)})" for n, c, t in zip(names, client, tna))


# --------------------------------------------------------------------------- (a) tna -> clients

def ensure_run(run: Path) -> Path:
    if (run / "best.pt").exists():
        return run
    print(f"{run}/best.pt missing: training a conv-small net on Fashion-MNIST there (minutes)")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tna.cli", "train", "--dataset", "fashion-mnist",
                    "--train-limit", "6000", "--epochs", "3", "--ternary-after", "2", "--out",
                    str(run), "--no-progress"], check=True)
    print(f"trained in {time.perf_counter() - t0:.0f} s")
    return run


def tna_graph(run: Path | None, net: Path | None, folder: Path, samples: int):
    """`tna export RUN --out m.net` (or a given .net), then the .net as NIR (defaults:
    portable form, dt 1e-4)."""
    from tna.export import ExportConfig, export
    from tna.nir import export_nir
    with quiet():
        if net is None:
            net = export(str(run), ExportConfig(out=str(folder / "m.net"), limit=samples,
                                                verify=False, progress=False))
        graph = export_nir(net, ExportConfig(out=str(folder / "m.nir")))
    return Path(net), Path(graph)


def load_client(lib: str, graph, batched: bool):
    """The client's module for `graph`, its spiking modules (in order) and a step function
    step(x_t, state) -> (state, readout membrane) where readout = the last neuron's v."""
    import copy
    g = copy.deepcopy(graph)
    with quiet():
        if lib == "snntorch":
            import snntorch as snn
            from snntorch.import_nir import import_from_nir
            net = import_from_nir(g)
            neurons = [m for m in net.modules() if isinstance(m, snn.SpikingNeuron)]
        else:
            import norse.torch as norse
            from norse.torch.utils.import_nir import CubaLIF
            net = norse.from_nir(g, dt=float(g.metadata["dt"]))
            neurons = [m for m in net.modules() if isinstance(m, CubaLIF)]
    if batched:          # NIR's Flatten(start_dim=0) has no batch axis; both build Flatten(0)
        for m in net.modules():
            if isinstance(m, torch.nn.Flatten):
                m.start_dim = 1
    if lib == "snntorch":
        def step(x, state):
            net(x)
            return state, neurons[-1].mem

        def reset():
            import snntorch.utils
            snntorch.utils.reset(net)
            return None
    else:
        def step(x, state):
            _, state = net(x, state)
            return state, readout["v"]

        def reset():
            return None
        readout = {}
        neurons[-1].register_forward_hook(lambda m, i, o: readout.__setitem__("v", o[1][1].v))
    return net, neurons, step, reset


def run_client(lib: str, graph, x: np.ndarray, batched: bool, batch_size: int = 500):
    """Summed readout membrane (N, classes) and spikes per sample per neuron layer."""
    net, neurons, step, reset = load_client(lib, graph, batched)
    counts = [None] * len(neurons)

    def hook(k):
        def f(mod, inp, out):
            s = out[0] if isinstance(out, tuple) else out
            c = s.reshape(s.shape[0] if batched else 1, -1).sum(1)
            counts[k] = c if counts[k] is None else counts[k] + c
        return f
    for k, m in enumerate(neurons):
        m.register_forward_hook(hook(k))
    xt = torch.as_tensor(x, dtype=torch.float32)
    chunks = ([xt[i:i + batch_size] for i in range(0, len(xt), batch_size)] if batched
              else list(xt))
    outs, per_layer = [], []
    with torch.no_grad():
        for chunk in chunks:
            state, acc = reset(), 0
            counts[:] = [None] * len(neurons)
            for t in range(chunk.shape[-1]):
                state, v = step(chunk[..., t], state)
                acc = acc + v
            outs.append(acc.reshape(-1 if batched else 1, acc.shape[-1]))
            per_layer.append(torch.stack(counts, 1).reshape(-1, len(neurons)))
    return torch.cat(outs).numpy(), torch.cat(per_layer).numpy()


def part_a(args) -> None:
    import nir

    from tna import netx
    from tna.deploy import RunConfig
    from tna.deploy.inputs import dataset_inputs
    from tna.reference import run_reference

    run = Path(args.net) if args.net else ensure_run(Path(args.run))
    with tempfile.TemporaryDirectory(prefix="tna-interop-") as tmp:
        t0 = time.perf_counter()
        net_path, graph_path = tna_graph(None if args.net else run,
                                         Path(args.net) if args.net else None, Path(tmp),
                                         args.samples)
        model = netx.read_net(net_path)
        graph = nir.read(graph_path)
    t_export = time.perf_counter() - t0
    meta = model.meta
    x, y = dataset_inputs(model, RunConfig(backend="reference", limit=args.samples,
                                            progress=False))
    t0 = time.perf_counter()
    ref = run_reference(model, x)
    t_ref = time.perf_counter() - t0
    tna_pred = ref.logits.numpy().argmax(1)
    tna_counts = np.stack([c.numpy() for c in ref.layer_counts], 1).astype(np.float64)
    names = [f"L{i}" for i, layer in enumerate(model.layers) if layer.neuron is not None]
    print(f"\n(a) tna -> NIR -> clients: {run} ({meta.extra.get('arch', '?')}, {meta.dataset}, "
          f"{meta.weights} weights), T={meta.timesteps}, {meta.encoding} input 0..15, "
          f"{meta.readout} readout; {len(x)} test samples; exported in {t_export:.0f} s, "
          f"{len(graph.nodes)} NIR nodes")
    per_layer = " ".join(f"{n} {c:.1f}" for n, c in zip(names, tna_counts.mean(0)))
    print(f"  tna reference: accuracy {np.mean(tna_pred == y):.2%}, {t_ref:.1f} s; spikes per "
          f"sample per layer: {per_layer}")
    span = np.ptp(ref.logits.numpy(), 1)
    top = np.sort(ref.logits.numpy(), 1)
    tna_margin = (top[:, -1] - top[:, -2]) / np.maximum(span, 1)
    try:                 # the graph's float semantics as tna reads them (tna.nir.semantics)
        from tna.nir.simulate import simulate
        fo = simulate(graph, x, dt=float(graph.metadata["dt"]))
        f_pred = np.asarray(fo.voltage).sum(-1).argmax(1)
        f_counts = np.stack([np.asarray(c) for c in fo.layer_counts], 1)
        print(f"  tna's float semantics of the graph (tna.nir.simulate): agreement with the "
              f"reference {np.mean(f_pred == tna_pred):.2%}; samples whose spikes per layer "
              f"equal the reference's {np.mean(np.all(f_counts == tna_counts, 1)):.1%}")
    except ImportError:
        fo = None
    for lib in ("snntorch", "norse"):
        for batched in (False, True):
            t0 = time.perf_counter()
            v, counts = run_client(lib, graph, x, batched)
            dt = time.perf_counter() - t0
            pred = v.argmax(1)
            # Lava's v = 4096 * NIR's v for tna's (exact) graphs; per sample, of its range
            diff = np.abs(v * 4096.0 - ref.logits.numpy()).max(1) / span
            print(f"  {lib:<8} {'batched' if batched else 'one by one':<10}: agreement "
                  f"{np.mean(pred == tna_pred):.2%} ({np.sum(pred != tna_pred)} differ), "
                  f"accuracy {np.mean(pred == y):.2%}, {len(x) / dt:.0f} samples/s; readout "
                  f"|diff| / range median {np.median(diff):.0e}, max {diff.max():.0e}")
            differ = pred != tna_pred
            if differ.any():
                print(f"      tna's readout margin (top two, of its range) where they differ: "
                      f"{', '.join(f'{m:.1e}' for m in tna_margin[differ])}")
            if fo is not None:
                print(f"      vs tna.nir.simulate: predictions equal on "
                      f"{np.mean(pred == f_pred):.2%}, spikes per layer per sample on "
                      f"{np.mean(np.all(counts == f_counts, 1)):.2%}")
            print(f"      spikes per layer, client/tna (tna vs client): "
                  f"{counts_line(names, counts.mean(0), tna_counts.mean(0))}")


# --------------------------------------------------------------------------- (b) clients -> tna

def digits():
    """sklearn's digits in [0, 1], (N, 1, 8, 8), shuffled with seed 0: 1400 train, 397 test."""
    from sklearn.datasets import load_digits
    d = load_digits()
    idx = np.random.default_rng(0).permutation(len(d.target))
    x = torch.tensor(d.images[idx] / 16.0, dtype=torch.float32)[:, None]
    y = torch.tensor(d.target[idx])
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


def tiled(x, y, n):
    """The test images repeated to n samples (each repeat gets its own rate-coded draw)."""
    reps = math.ceil(n / len(y))
    return x.repeat((reps,) + (1,) * (x.dim() - 1))[:n], y.repeat(reps)[:n]


def snntorch_net(channels: int = 16, beta: float = 0.9):
    import snntorch as snn
    from snntorch import surrogate
    grad = surrogate.fast_sigmoid(slope=25)

    def leaky(shape, output=False):       # per-neuron beta and threshold: export_to_nir needs them
        return snn.Leaky(beta=torch.full(shape, beta), threshold=torch.ones(shape),
                         spike_grad=grad, init_hidden=True, reset_mechanism="zero",
                         output=output)
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, channels, 3, padding=1), torch.nn.AvgPool2d(2),
        leaky((channels, 4, 4)), torch.nn.Flatten(), torch.nn.Linear(channels * 16, 10),
        leaky((10,), output=True))


def snntorch_forward(net, data):
    """data (T, N, 1, 8, 8) -> output spikes (T, N, 10), as snnTorch's tutorials loop."""
    from snntorch import utils
    utils.reset(net)
    out = []
    for t in range(data.shape[0]):
        spk, _ = net(data[t])
        out.append(spk)
    return torch.stack(out)


def train_snntorch(loss: str, epochs: int):
    import snntorch.functional as SF
    from snntorch import spikegen
    (xt, yt), _ = digits()
    net = snntorch_net()
    if loss == "mse":
        loss_fn, lr = SF.mse_count_loss(correct_rate=0.8, incorrect_rate=0.2), 2e-2
    else:
        loss_fn, lr = SF.ce_count_loss(), 5e-3
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.9, 0.999))
    g = torch.Generator().manual_seed(1)
    for _ in range(epochs):
        perm = torch.randperm(len(yt), generator=g)
        for i in range(0, len(yt), 128):
            b = perm[i:i + 128]
            spk = snntorch_forward(net, spikegen.rate(xt[b], num_steps=T_CLIENT))
            err = loss_fn(spk, yt[b])
            opt.zero_grad()
            err.backward()
            opt.step()
    return net


def snntorch_client(loss: str, epochs: int, n: int):
    """Train, run on n rate-coded test samples, export. (graph, x (N, 1, 8, 8, T) ints,
    y, client spike counts (N, 10), per-layer spikes (N, layers))."""
    import snntorch as snn
    from snntorch import spikegen
    from snntorch.export_nir import export_to_nir
    net = train_snntorch(loss, epochs)
    _, (xv, yv) = digits()
    xv, yv = tiled(xv, yv, n)
    torch.manual_seed(99)
    data = spikegen.rate(xv, num_steps=T_CLIENT)                       # (T, N, 1, 8, 8)
    leaky = [m for m in net if isinstance(m, snn.Leaky)]
    counts = [0] * len(leaky)

    def hook(k):
        def f(mod, inp, out):
            s = out[0] if isinstance(out, tuple) else out
            counts[k] = counts[k] + s.flatten(1).sum(1)
        return f
    hooks = [m.register_forward_hook(hook(k)) for k, m in enumerate(leaky)]
    with torch.no_grad():
        spk = snntorch_forward(net, data)
    for h in hooks:
        h.remove()
    with quiet():
        graph = export_to_nir(net, data[0, :1], ignore_dims=[0])
    x = data.permute(1, 2, 3, 4, 0).numpy().astype(np.int64)
    return graph, x, yv.numpy(), spk.sum(0).numpy(), torch.stack(counts, 1).numpy()


def norse_model(hidden: int = 128):
    import norse.torch as norse

    def box(n):   # Norse's defaults (tau_mem_inv 100, v_th 1, v_leak = v_reset = 0) per neuron
        return norse.LIFBoxCell(norse.LIFBoxParameters(
            tau_mem_inv=torch.full((n,), 100.0), v_th=torch.ones(n), v_leak=torch.zeros(n),
            v_reset=torch.zeros(n)))
    torch.manual_seed(0)
    return norse.SequentialState(torch.nn.Linear(64, hidden), box(hidden),
                                 torch.nn.Linear(hidden, 10), box(10))


def norse_forward(model, data):
    state, out = None, []
    for t in range(data.shape[0]):
        z, state = model(data[t], state)
        out.append(z)
    return torch.stack(out)


def norse_client(epochs: int, n: int):
    import norse.torch as norse
    (xt, yt), (xv, yv) = digits()
    xt, xv = xt.flatten(1), xv.flatten(1)
    model = norse_model()
    encoder = norse.PoissonEncoder(T_CLIENT, f_max=1000)      # p = pixel per step at dt 1 ms
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(epochs):
        perm = torch.randperm(len(yt), generator=g)
        for i in range(0, len(yt), 64):
            b = perm[i:i + 64]
            spk = norse_forward(model, encoder(xt[b]))
            err = torch.nn.functional.cross_entropy(spk.sum(0), yt[b])
            opt.zero_grad()
            err.backward()
            opt.step()
    xv, yv = tiled(xv, yv, n)
    torch.manual_seed(99)
    data = encoder(xv)                                         # (T, N, 64)
    cells = [m for m in model.modules() if isinstance(m, norse.LIFBoxCell)]
    counts = [0] * len(cells)

    def hook(k):
        def f(mod, inp, out):
            counts[k] = counts[k] + out[0].flatten(1).sum(1)
        return f
    hooks = [m.register_forward_hook(hook(k)) for k, m in enumerate(cells)]
    with torch.no_grad():
        spk = norse_forward(model, data)
    for h in hooks:
        h.remove()
    with quiet():
        graph = norse.to_nir(model, data[0, :1])
    x = data.permute(1, 2, 0).numpy().astype(np.int64)
    return graph, x, yv.numpy(), spk.sum(0).numpy(), torch.stack(counts, 1).numpy()


def into_tna(graph, x: np.ndarray, dt: float, folder: Path, name: str):
    """Import `graph` into tna; reference and emulator outputs on x; (conversion, reference,
    emulator equal?)."""
    import nir

    from tna import netx
    from tna.nir import ImportConfig, import_nir
    from tna.reference import run_reference
    from tna.sim import emulate
    path = folder / f"{name}.nir"
    nir.write(path, graph)
    with quiet():
        net, conv = import_nir(path, ImportConfig(out=str(folder / f"{name}.net"), dt=dt,
                                                  timesteps=x.shape[-1], input_message_bits=0))
    model = netx.read_net(net)
    ref = run_reference(model, x, readout="spike")
    n_layers = len(conv.layers)
    em = emulate(model, x, record_layers="all", reset_interval=x.shape[-1] + n_layers + 1,
                 reset_offset=1)
    layers = [i for i, layer in enumerate(model.layers) if layer.neuron is not None]
    same = (torch.equal(ref.spikes.bool(), em.out_spikes.bool())
            and torch.equal(ref.voltage.double(), em.out_voltage.double())
            and all(torch.equal(ref.layer_counts[k].long(),
                                em.aligned(i).flatten(1).sum(1).long())
                    for k, i in enumerate(layers)))
    return conv, ref, same


def report_b(title: str, dt: float, client, t_train: float, folder: Path, name: str) -> None:
    graph, x, y, c_logits, c_counts = client
    t0 = time.perf_counter()
    conv, ref, same = into_tna(graph, x, dt, folder, name)
    t_tna = time.perf_counter() - t0
    t_logits = ref.logits.numpy()
    top = np.sort(c_logits, 1)
    tie = top[:, -1] == top[:, -2]
    agree = c_logits.argmax(1) == t_logits.argmax(1)
    miss = ~agree & ~tie
    margin = (top[:, -1] - top[:, -2]).astype(int)
    t_counts = np.stack([c.numpy() for c in ref.layer_counts], 1).astype(np.float64)
    names = [f"L{q.layer}" for q in conv.layers]
    print(f"\n  {title}: trained in {t_train:.0f} s, tna import + reference + emulator "
          f"{t_tna:.1f} s, {len(y)} test samples, T={x.shape[-1]}, dt {dt:g}")
    for q in conv.layers:
        print(f"    {q.summary()}")
    print(f"    agreement {agree.mean():.2%} all, {agree[~tie].mean():.2%} non-tie "
          f"({miss.sum()} of {(~tie).sum()} differ; client margins of those "
          f"{dict(zip(*np.unique(margin[miss], return_counts=True)))}), {tie.sum()} ties "
          f"({np.mean(agree[tie]) if tie.any() else 1:.0%} of them agree)")
    print(f"    accuracy client {np.mean(c_logits.argmax(1) == y):.2%}, tna "
          f"{np.mean(t_logits.argmax(1) == y):.2%}; reference == emulator: "
          f"{'yes (exact)' if same else 'NO'}")
    print(f"    spikes per sample per layer, client/tna (tna vs client): "
          f"{counts_line(names, c_counts.mean(0), t_counts.mean(0))}")


def part_b(args) -> None:
    print(f"\n(b) clients -> NIR -> tna: sklearn digits 8x8, rate-coded, T={T_CLIENT}, "
          f"{args.epochs} epochs")
    with tempfile.TemporaryDirectory(prefix="tna-interop-") as tmp:
        for loss in (("ce",) if args.quick else ("ce", "mse")):
            t0 = time.perf_counter()
            client = snntorch_client(loss, args.epochs, args.client_samples)
            name = ("ce_count_loss()" if loss == "ce"
                    else "mse_count_loss(correct_rate=0.8, incorrect_rate=0.2)")
            report_b(f"snnTorch conv 16c3+avgpool2-10, {name}", SNN_DT, client,
                     time.perf_counter() - t0, Path(tmp), f"snntorch-{loss}")
        t0 = time.perf_counter()
        client = norse_client(args.epochs, args.client_samples)
        report_b("Norse MLP 64-128-10 (LIFBoxCell), cross-entropy on spike counts", NORSE_DT,
                 client, time.perf_counter() - t0, Path(tmp), "norse")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=DEFAULT_RUN, help="tna run folder for (a)")
    ap.add_argument("--net", help="(a): a .net that `tna export` wrote, instead of --run")
    ap.add_argument("--samples", type=int, default=500, help="(a): Fashion-MNIST test samples")
    ap.add_argument("--client-samples", type=int, default=2000,
                    help="(b): rate-coded digits test samples (397 images, redrawn)")
    ap.add_argument("--epochs", type=int, default=20, help="(b): training epochs per client net")
    ap.add_argument("--quick", action="store_true", help="(a) on 100 samples, one snnTorch net")
    ap.add_argument("--only", choices=("a", "b"), help="run one part")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = ap.parse_args(argv)
    if args.quick:
        args.samples = min(args.samples, 100)
    if args.threads:
        torch.set_num_threads(args.threads)
    import nir
    import norse
    import snntorch
    print(f"snntorch {snntorch.__version__}, norse {norse.__version__}, nir {nir.__version__}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, load average "
          f"{os.getloadavg()[0]:.1f}")
    t0 = time.perf_counter()
    if args.only in (None, "a"):
        part_a(args)
    if args.only in (None, "b"):
        part_b(args)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
