"""Run a netx HDF5 network on Lava (CPU simulator or Loihi 2) for many samples at once.

The network is loaded with tna's netx loader (`tna.lava.net`: netx's loader that also gives
conv layers netx's weight-bit optimisation, so ternary kernels take 2 bits) or, with
`loader='netx'`, lava-dl's unmodified `netx.hdf5.Network`, and compiled ONCE. Samples
are concatenated in time, each in a window of R = T + drain Lava steps, and the network resets
its neurons every R steps (`reset_interval=R, reset_offset=1`: netx resets layer i at Lava steps
t with t % R == (i + 2) % R, exactly when the first input of a window reaches it). The input goes
straight into the first Dense/Conv block's synapse (`net.inp`).

Timeline (L = number of Dense/Conv layers, Lava steps counted from 1, window k from 0): input
step tau of sample k is sent at Lava step k*R + 1 + tau; each layer adds one step of synaptic
delay, so the last layer integrates it at Lava step k*R + L + 1 + tau. Hence, in the window of
raw per-step outputs (index j = Lava step - k*R - 1):

    aligned[..., tau] = raw_window[..., tau + SPIKE_OFFSET_PER_LAYER * L]   spikes (out port)
    aligned[..., tau] = raw_window[..., tau + VOLTAGE_OFFSET_PER_LAYER * L] v (after step j)

with both offsets equal to L steps (e.g. 5 for a 3-conv + 2-dense net), measured against slayer
blocks with `delay_shift=False`: 0 mismatches (tests/lava/test_runner.py; Intel's golden
outputs in tests/lava/test_golden.py agree). "Aligned" is the no-shift slayer timeline: aligned step
tau equals the slayer model's output at step tau for the same integer input. The window
therefore needs drain >= L; the default drain is L.

Units: spikes are Lava's integer messages (0/1 for binary spikes); voltage is Lava's integer v,
which equals slayer's float voltage * 4096 (exact while nothing overflows 24 bits). Lava's v is
read after the spike reset, so it is 0 where a neuron spiked, where slayer's `dynamics` voltage
is not; with readout 'voltage' the last layer never spikes (vThMant = 2**17 - 1).

Speed (2 cores, 16c3-32c3s2-64c3s2-256-10 CUBA net, 28x28 graded input, T = 5, drain 5, 1000
samples, readout 'voltage'): 19.7 ms/sample including compile and process start, i.e. ~3.5 min
for 10k samples (lava-dl's way, one network per sample: 684 ms/sample). It comes from
`tna.lava.procs`: memory-mapped input/output processes, an exact conv model in place of
lava-nc's per-channel scipy loop, and lava-nc's asynchronous conversion of the same models.
"""
import contextlib
import dataclasses
import io
import logging
import multiprocessing
import signal
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from tna.console import count
from tna.errors import TnaError
from tna.netx import LOADERS

#: Lava steps between the input and the last layer's output, per Dense/Conv layer.
SPIKE_OFFSET_PER_LAYER = 1
VOLTAGE_OFFSET_PER_LAYER = 1
_READOUTS = ("spike", "voltage", "none")
_LAVA_TARGETS = ("lava-sim", "loihi2")          # the backends this module runs
_LOIHI2_MISSING = ("Loihi 2 backend needs lava-loihi (Intel INRC) and a board: install lava-loihi "
                   "on a machine with a Loihi 2 system, or use backend='lava-sim'")
_POLL_SECONDS = 0.2             # progress bar refresh while Lava runs
_KILL_TIMEOUT_SECONDS = 5       # wait for a terminated Lava process before SIGKILL


@dataclasses.dataclass(frozen=True)
class LavaResult:
    """Outputs of `run_lava`.

    spikes: (N, out, T) last layer's output messages, aligned to the slayer no-shift timeline.
    voltage: (N, out, T) last layer's v (raw Lava integers = slayer voltage * 4096), aligned;
        None unless readout='voltage'.
    raw_spikes: (N, out, R) unaligned output per sample window of R = T + drain Lava steps.
    raw_voltage: (N, out, R) unaligned v per window, or None.
    seconds: wall time of the Lava run (compile, process start and simulation).
    steps: Lava time steps simulated (N * R).
    """

    spikes: np.ndarray
    voltage: np.ndarray | None
    raw_spikes: np.ndarray
    raw_voltage: np.ndarray | None
    seconds: float
    steps: int


@dataclasses.dataclass(frozen=True)
class _NetInfo:
    num_layers: int          # Dense/Conv blocks, i.e. Lava steps of pipeline delay
    first_type: str          # 'dense' or 'conv'
    max_delay_steps: int     # the most axonal delay a spike can collect on its way through
    input_neuron: bool = False   # the data goes into net.in_layer.neuron.a_in (tna.netx)
    in_ndim: int = 1         # the input layer's shape: 3 = (C, H, W), sent as (W, H, C)


def _inspect_net(net_path: Path, skip_layers: int = 0, model=None) -> _NetInfo:
    """The layer types of a netx HDF5 file (`model`: the file already read, with skip_layers
    applied), checked that run_lava can feed them."""
    from tna.netx import BLOCK_TYPES, MAX_DELAY, NETX_LOADABLE, has_input_neuron, read_net
    from tna.netx import skip_layers as skip

    if not net_path.is_file():
        raise TnaError(f"{net_path}: no such network file; export one with `tna export`")
    if model is None:
        model, _ = skip(read_net(net_path), skip_layers)
    types = [layer.type for layer in model.layers]
    compute = [t for t in types if t in BLOCK_TYPES]      # one Lava block, one step each
    unsupported = sorted(set(types) - set(BLOCK_TYPES) - {"input", "flatten"})
    if unsupported:
        raise TnaError(f"{net_path}: layer types {unsupported} cannot run on Lava; netx runs "
                       f"{', '.join(NETX_LOADABLE)} layers")
    if not compute:
        raise TnaError(f"{net_path}: no {' or '.join(BLOCK_TYPES)} layer, so nothing for "
                       f"Lava to run")
    delays = [min(int(np.max(layer.delay)), MAX_DELAY) for layer in model.layers
              if layer.delay is not None and np.size(layer.delay) and layer.type != "conv"]
    neuron = has_input_neuron(model)
    return _NetInfo(num_layers=len(compute), first_type=compute[0],
                    max_delay_steps=sum(max(d, 0) for d in delays), input_neuron=neuron,
                    in_ndim=len(model.layers[0].shape) if neuron else 1)


def _to_lava_layout(inputs: np.ndarray, info: _NetInfo) -> np.ndarray:
    """(N, C, H, W, T) or (N, neurons, T) slayer layout -> (N, T, *netx input shape).

    netx conv blocks and (C, H, W) input neurons use (W, H, C) ("XYZ") shapes; a net starting
    with Dense takes the slayer flatten order (C, H, W) of a conv-shaped input.
    """
    if inputs.ndim == 5 and (info.in_ndim == 3 if info.input_neuron
                             else info.first_type == "conv"):
        return inputs.transpose(0, 4, 3, 2, 1)
    n, t = inputs.shape[0], inputs.shape[-1]
    return inputs.reshape(n, -1, t).transpose(0, 2, 1)


def _loihi2_available() -> bool:
    from lava.utils import loihi

    if not loihi.is_installed():
        return False
    try:
        from lava.utils import slurm

        return bool(slurm.is_available())
    except FileNotFoundError:  # no `sinfo`: no SLURM partition with a board
        return False


def _run_config(backend: str, models: str = "fast"):
    if backend == "loihi2":
        if not _loihi2_available():
            raise TnaError(_LOIHI2_MISSING)
        from lava.magma.core.run_configs import Loihi2HwCfg

        return Loihi2HwCfg()
    from tna.lava.procs import AsyncSimCfg, StockSimCfg

    if models == "stock":
        return StockSimCfg()

    # fixed_pt (bit-accurate Loihi arithmetic) with exact faster conv and a v writer, run
    # asynchronously; netx CUBA has no floating_pt models.
    return AsyncSimCfg()


@contextlib.contextmanager
def _quiet():
    """Silence Lava's warnings, log messages and prints (also those of forked children)."""
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink):
        warnings.simplefilter("ignore")
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(previous)


@contextlib.contextmanager
def _children_ignore_sigint():
    """Processes forked inside this block ignore SIGINT; a Ctrl-C meanwhile is not lost.

    A terminal's Ctrl-C goes to the whole process group: Lava's children must not die on it
    half-way through a step, or `net.stop()` in the parent could wait forever for them. The
    children inherit a handler that only takes note (in their own memory); the parent re-raises
    a Ctrl-C that arrived while it was forking, once its handler is back.
    """
    caught = []

    def note(signum, frame):
        caught.append(signum)

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _validate(inputs, timesteps, readout, backend):
    if readout not in _READOUTS:
        raise TnaError(f"readout={readout!r}: use one of {', '.join(_READOUTS)}")
    if backend not in _LAVA_TARGETS:
        raise TnaError(f"backend={backend!r}: use one of {', '.join(_LAVA_TARGETS)}")
    inputs = np.asarray(inputs)
    if inputs.ndim not in (3, 5) or inputs.shape[-1] != timesteps:
        raise TnaError(f"inputs have shape {inputs.shape}: expected (N, neurons, T) or "
                       f"(N, C, H, W, T) with T = timesteps = {timesteps}")
    if not np.issubdtype(inputs.dtype, np.integer) and not np.array_equal(inputs,
                                                                          np.round(inputs)):
        raise TnaError("inputs must be integers (graded values or 0/1 spikes)")
    return inputs.astype(np.int32)


def run_lava(net_path, inputs, *, timesteps: int, readout: str = "spike",
             input_message_bits: int = 0, backend: str = "lava-sim",
             drain_steps: int | None = None, progress: bool = True,
             models: str = "fast", loader: str = "tna", skip_layers: int = 0,
             model=None) -> LavaResult:
    """Run every sample of `inputs` through the netx network at `net_path` on Lava.

    inputs: integers in slayer layout, (N, neurons, T) or (N, C, H, W, T), T = timesteps.
    readout: 'spike' (output spikes only), 'voltage' (also the last layer's v per step) or
        'none' (spikes only; same cost as 'spike').
    input_message_bits: 0 for binary spike input, e.g. 8 for graded input values.
    backend: 'lava-sim' (CPU, bit-accurate fixed point) or 'loihi2' (needs lava-loihi).
    drain_steps: extra Lava steps per sample window; minimum: the number of Dense/Conv layers
        (the pipeline delay), so the window holds all T aligned steps; default: that plus the
        largest axonal delays, so delayed spikes land before the next sample's reset.
    models: 'fast' (default: exact faster conv model, asynchronous execution; see tna.lava.procs)
        or 'stock' (lava-nc's own fixed_pt models under Loihi2SimCfg, ~10x slower).
    loader: 'tna' (conv weights at netx's optimized weight bits, e.g. 2 for ternary kernels) or
        'netx' (unmodified netx.hdf5.Network: conv weights at 8 bits); the outputs are the same.
    skip_layers: netx.hdf5.Network's: leave out the file's first layers and feed the next one
        (its message bits then replace input_message_bits; tna.netx.skip_layers).
    model: the file as tna.netx read it, skip_layers applied (`tna run` has it: the file is
        then parsed once more only by netx's own loader).
    Returns a LavaResult; aligned outputs follow the slayer no-shift timeline.
    """
    if models not in ("fast", "stock"):
        raise TnaError(f"models={models!r}: use fast or stock")
    if loader not in LOADERS:
        raise TnaError(f"loader={loader!r}: use one of {', '.join(LOADERS)}")
    inputs = _validate(inputs, timesteps, readout, backend)
    net_path = Path(net_path)
    info = _inspect_net(net_path, skip_layers, model)
    if info.first_type == "conv" and inputs.ndim != 5:
        raise TnaError(f"{net_path}: the first layer is a conv layer; give inputs as "
                       f"(N, C, H, W, T), not {inputs.shape}")
    # Delayed spikes must land before the next sample's window resets the neurons.
    drain = info.num_layers + info.max_delay_steps if drain_steps is None else drain_steps
    if drain < info.num_layers:
        raise TnaError(f"drain_steps={drain}: must be >= {info.num_layers} (the number of "
                       "layers), or the last aligned steps are lost")
    window = timesteps + drain
    n = inputs.shape[0]
    lava_inputs = _to_lava_layout(inputs, info)
    with tempfile.TemporaryDirectory(prefix="tna-lava-") as tmp:
        raw_spikes, raw_voltage, seconds = _simulate(
            net_path, lava_inputs, window, readout, input_message_bits, backend, progress,
            Path(tmp), models=models, loader=loader, skip_layers=skip_layers,
            input_neuron=info.input_neuron)
    raw_spikes = raw_spikes.reshape(n, window, -1).transpose(0, 2, 1)
    spike_lag = SPIKE_OFFSET_PER_LAYER * info.num_layers
    voltage = None
    if raw_voltage is not None:
        raw_voltage = raw_voltage.reshape(n, window, -1).transpose(0, 2, 1)
        v_lag = VOLTAGE_OFFSET_PER_LAYER * info.num_layers
        voltage = raw_voltage[..., v_lag:v_lag + timesteps]
    return LavaResult(spikes=raw_spikes[..., spike_lag:spike_lag + timesteps], voltage=voltage,
                      raw_spikes=raw_spikes, raw_voltage=raw_voltage, seconds=seconds,
                      steps=n * window)


def _simulate(net_path, lava_inputs, window, readout, input_message_bits, backend, progress,
              tmp, models="fast", loader="tna", skip_layers=0, input_neuron=False):
    """Run the concatenated samples; returns raw (steps, out) spikes, v or None, seconds.

    Each layer resets where a sample's data reaches it (tna.netx.data_reset_offset): netx's
    reset_offset 1, or 0 when the data goes into an input neuron's a_in (Intel's tutorials'
    way; netx connects net.inp to nothing then)."""
    steps = lava_inputs.shape[0] * window
    in_shape = tuple(lava_inputs.shape[2:])
    in_dtype = _write_inputs(tmp / "in.dat", lava_inputs, window)
    np.memmap(tmp / "progress.dat", dtype=np.int64, mode="w+", shape=(1,)).flush()

    started = time.perf_counter()
    with _quiet():
        from lava.magma.core.run_conditions import RunSteps

        from tna.lava import procs as lava_procs
        from tna.lava.net import load_network

        net = load_network(net_path, loader, reset_interval=window,
                           reset_offset=0 if input_neuron else 1,
                           input_message_bits=input_message_bits,
                           input_shape=in_shape if len(in_shape) == 3 else None,
                           skip_layers=skip_layers)
        clean = False
        try:
            out_shape = net.out.shape
            source = lava_procs.MemmapSource(shape=in_shape, path=str(tmp / "in.dat"),
                                             num_steps=steps, dtype=in_dtype)
            _new_file(tmp / "out.dat", (steps, *out_shape))
            sink = lava_procs.MemmapSink(shape=out_shape, path=str(tmp / "out.dat"),
                                         num_steps=steps,
                                         progress_path=str(tmp / "progress.dat"))
            source.s_out.connect(net.in_layer.neuron.a_in if input_neuron else net.inp)
            net.out.connect(sink.a_in)
            if readout == "voltage":
                neuron = net.layers[-1].neuron
                _new_file(tmp / "v.dat", (steps, *neuron.v.shape))
                neuron.proc_params[lava_procs.V_FILE_KEY] = (str(tmp / "v.dat"), steps,
                                                             neuron.v.shape)
            run_cfg = _run_config(backend, models)
            with _children_ignore_sigint():
                net.create_runtime(run_cfg=run_cfg)
            net.run(condition=RunSteps(num_steps=steps, blocking=False))
            _follow(tmp / "progress.dat", steps, window, progress,
                    net.runtime._messaging_infrastructure.actors)
            net.wait()
            clean = True
        finally:
            try:
                _shutdown(net, clean)
            finally:
                net.net_config.f.close()  # netx keeps the HDF5 file open
    seconds = time.perf_counter() - started
    spikes = _read_output(tmp / "out.dat", steps, out_shape)
    voltage = _read_output(tmp / "v.dat", steps, out_shape) if readout == "voltage" else None
    return spikes, voltage, seconds


def _write_inputs(path, lava_inputs, window: int) -> str:
    """Write (N, T, ...) samples time-major to `path`; returns the dtype used.

    Sample k occupies rows k*window .. k*window+T-1, the rest stays zero. int16 when it fits:
    the file is N * window * inputs values (300 MB as int32 for 10k images)."""
    n, t = lava_inputs.shape[:2]
    in_shape = tuple(lava_inputs.shape[2:])
    fits16 = lava_inputs.size == 0 or np.abs(lava_inputs).max() < 2**15
    in_dtype = "int16" if fits16 else "int32"
    data = np.memmap(path, dtype=in_dtype, mode="w+", shape=(n * window, *in_shape))
    data.reshape(n, window, *in_shape)[:, :t] = lava_inputs
    data.flush()
    del data
    return in_dtype


def _new_file(path, shape):
    np.memmap(path, dtype=np.int32, mode="w+", shape=shape).flush()


def _follow(progress_path, steps, window, enabled, actors):
    """Show a progress bar over samples until the sink has written the last step.

    Lava's processes stay alive until stopped, so one that exits during the run has failed;
    the others would then wait for its messages forever.
    """
    from tqdm import tqdm

    done = np.memmap(progress_path, dtype=np.int64, mode="r", shape=(1,))
    # sys.__stderr__: the bar must show although _quiet() captures Lava's output.
    bar_on = enabled and sys.__stderr__.isatty()
    if enabled and not bar_on:           # a log file: one line for the phase, not a bar
        print(f"lava: running {count(steps // window, 'sample')} ({steps} steps)",
              file=sys.__stderr__, flush=True)
    with tqdm(total=steps // window, unit="sample", desc="lava", disable=not bar_on,
              file=sys.__stderr__) as bar:
        while int(done[0]) < steps:
            time.sleep(_POLL_SECONDS)
            dead = [actor for actor in actors if actor.exitcode is not None]
            if dead:
                error = dead[0].exception
                raise RuntimeError("a Lava process failed: "
                                   + (error[1] if error else f"exit code {dead[0].exitcode}"))
            bar.update(int(done[0]) // window - bar.n)
        bar.update(steps // window - bar.n)


def _shutdown(net, clean: bool) -> None:
    """Stop Lava's runtime; after an error or Ctrl-C, end its OS processes directly.

    Asynchronous models look at a STOP command only after their last step, so `net.stop()`
    during a run would wait for the whole run; lava-nc has no public way to abort it.
    """
    runtime = net.runtime
    if runtime is None:
        return
    if clean:
        net.stop()
        return
    infrastructure = runtime._messaging_infrastructure
    # After an error in a process model, Lava's wait() has joined and closed every actor.
    actors = [actor for actor in infrastructure.actors if not actor._closed]
    for actor in actors:
        if actor.is_alive():
            actor.terminate()
    for actor in actors:
        multiprocessing.Process.join(actor, _KILL_TIMEOUT_SECONDS)
        if actor.is_alive():
            actor.kill()
            multiprocessing.Process.join(actor)
    infrastructure.smm.shutdown()  # the shared-memory server process
    runtime._watchdog_manager.stop()
    runtime._is_started = runtime._is_running = False  # Runtime.__del__ would send STOP


def _read_output(path, steps, shape):
    """(steps, *shape) int32 file -> (steps, neurons) in slayer order ((W, H, C) -> C, H, W)."""
    data = np.array(np.memmap(path, dtype=np.int32, mode="r", shape=(steps, *shape)))
    if len(shape) == 3:
        data = data.transpose(0, 3, 2, 1)
    return data.reshape(steps, -1)

