"""How a CUBA neuron block's dynamics run: three implementations of slayer's arithmetic.

  slayer  the block's own neuron: slayer picks its CUDA kernels (JIT-compiled with nvcc on first
          use) on a GPU and its PyTorch loop on CPU
  torch   slayer's PyTorch loop (`_LIDynamics`, `Spike`) on any device: a GPU machine without
          nvcc, or whose torch headers the .cu files no longer build against, still trains
  fused   tna's C kernel (cuba_kernel.c): the same integer and float32 operations, vectorised
          over neurons, OpenMP over blocks of them; CPU only. Forward bit-identical to slayer;
          gradients equal up to the rounding of exp (tests/models/test_dynamics.py); learned
          decays get slayer's leaky-integrator gradients, computed beside the kernel
          (`_decay_grads`). In training, tna.models.snn runs it on time-major activations
          (`fused_time_major`)

`select(device)` picks once per process: CPU -> fused (torch if no C compiler), CUDA -> slayer
(torch if its JIT build fails), printing one line when it falls back. TNA_DYNAMICS=fused|slayer|
torch forces a choice. Only the training speed depends on it, never a result.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

IMPLS = ("fused", "slayer", "torch")
_SOURCE = Path(__file__).with_name("cuba_kernel.c")
_lib = None           # the loaded kernel, False when it cannot be built
_chosen: dict = {}    # device type -> impl


def _note(msg: str) -> None:
    print(f"note: {msg}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    root = os.environ.get("TNA_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tna")
    return Path(root)


def kernel():
    """The compiled C kernel (ctypes), built once per source version; None if it cannot be."""
    global _lib
    if _lib is None:
        try:
            _lib = _build()
        except (OSError, subprocess.SubprocessError) as e:
            _note(f"cannot build tna's fused CPU dynamics ({str(e).splitlines()[0][:100]}); "
                  f"training uses slayer's PyTorch path, about 2x slower")
            _lib = False
    return _lib or None


def _cpu_id() -> bytes:
    """What -march=native compiles for: a cached kernel is reused only on the same CPU kind."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor().encode()
    return "".join(sorted({ln for ln in info.splitlines()
                           if ln.startswith(("model name", "flags"))})).encode()


def _build():
    src = _SOURCE.read_bytes()
    flags = ["-O3", "-march=native", "-fPIC", "-shared", "-fopenmp", "-ffp-contract=off",
             "-fno-fast-math", "-fno-trapping-math"]
    tag = hashlib.sha256(src + " ".join(flags).encode() + _cpu_id()).hexdigest()[:16]
    so = cache_dir() / f"cuba_kernel-{tag}.so"
    if not so.is_file():
        so.parent.mkdir(parents=True, exist_ok=True)
        tmp = so.with_suffix(f".{os.getpid()}.tmp")
        cc = os.environ.get("CC", "cc")
        subprocess.run([cc, *flags, str(_SOURCE), "-o", str(tmp), "-lm"], check=True,
                       capture_output=True, timeout=120)
        os.replace(tmp, so)              # atomic: parallel processes never load half a file
    lib = ctypes.CDLL(str(so))
    f, i64, p = ctypes.c_float, ctypes.c_int64, ctypes.c_void_p
    lib.cuba_forward.argtypes = [p, p, p, i64, i64, i64, i64, i64, i64, i64, f, f]
    lib.cuba_backward.argtypes = [p, p, p, p, i64, i64, i64, i64, i64, f, f, f, f, f]
    return lib


def slayer_jit_available() -> bool:
    """Whether slayer's CUDA leaky-integrator kernels build (nvcc JIT) on this machine."""
    try:
        from lava.lib.dl.slayer.neuron.dynamics import leaky_integrator
        leaky_integrator.Accelerated.leaky_integrator   # noqa: B018  (builds on first access)
        return True
    except Exception as e:   # noqa: BLE001  (nvcc missing, headers mismatch, no CUDA: all mean no)
        why = (str(e).splitlines() or [type(e).__name__])[0][:100]
        _note(f"slayer's CUDA kernels do not build here ({why}); training uses slayer's "
              f"PyTorch path on the GPU")
        return False


def select(device, learned: bool = False) -> str:
    """The implementation to use on `device` (see the module doc), chosen once per process.
    `learned` (the net learns its decays) chooses the same: every path has the decays'
    gradient (the fused one computes slayer's formula beside its kernel, _decay_grads)."""
    return _select(device)


def _select(device) -> str:
    kind = torch.device(device).type
    forced = os.environ.get("TNA_DYNAMICS")
    if forced:
        if forced not in IMPLS:
            from tna.errors import TnaError
            raise TnaError(f"TNA_DYNAMICS={forced!r}: choose one of {', '.join(IMPLS)}")
        if forced == "fused" and (kind != "cpu" or kernel() is None):
            return "torch"          # the C kernel is CPU-only and needs a compiler
        return forced
    if kind not in _chosen:
        if kind == "cpu":
            _chosen[kind] = "fused" if kernel() is not None else "torch"
        else:
            _chosen[kind] = "slayer" if slayer_jit_available() else "torch"
    return _chosen[kind]


# --------------------------------------------------------------------------- the three paths
def _params(neuron):
    """slayer's neuron constants exactly as its own code computes them (learned decays keep
    their gradient: slayer's quantize passes it straight through the rounding)."""
    from lava.lib.dl.slayer.neuron.cuba import SCALE_RHO_MULT, TAU_RHO_MULT
    from lava.lib.dl.slayer.utils import quantize
    thr = neuron.threshold + neuron.threshold_eps                    # python float
    if neuron.requires_grad:
        neuron.clamp()               # as slayer's forward does: decays stay in [0, 4096]
        return (thr, quantize(neuron.current_decay), quantize(neuron.voltage_decay),
                neuron.tau_rho * TAU_RHO_MULT, neuron.scale_rho * SCALE_RHO_MULT)
    cd = quantize(neuron.current_decay).detach()
    vd = quantize(neuron.voltage_decay).detach()
    return thr, cd, vd, neuron.tau_rho * TAU_RHO_MULT, neuron.scale_rho * SCALE_RHO_MULT


def _check(neuron, z, time_major=False):
    if neuron.shape is None:   # slayer's (C, H, W) or (F,), as its forward sets it (export_hdf5)
        neuron.shape = (torch.Size([z.shape[-1], *z.shape[2:-1]]) if time_major
                        else z.shape[1:-1])
        neuron.num_neurons = int(torch.tensor(neuron.shape).prod())
    if neuron.graded_spike or neuron.persistent_state or not neuron.shared_param \
            or neuron.norm is not None or neuron.s_scale != 4096:
        raise NotImplementedError("tna's dynamics cover shared-parameter, binary-spike CUBA "
                                  "neurons without norm or persistent state")


def _layout(z, time_major: bool) -> tuple[int, int, int, int, int]:
    """The kernel's (blocks, T, neurons per block, time stride, neuron stride) for tna's
    time-major (N, T, ...) or slayer's (N, ..., T) (see cuba_kernel.c)."""
    if time_major:
        J = z.numel() // (z.shape[0] * z.shape[1])
        return z.shape[0], z.shape[1], J, J, 1
    T = z.shape[-1]
    return 1, T, z.numel() // T, 1, T


class _Fused(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, cd, vd, thr, tau, scale, time_major=False):
        ctx.set_materialize_grads(False)     # an unused output's gradient stays None
        z = z.contiguous()
        layout = _layout(z, time_major)
        voltage = torch.empty_like(z)
        spikes = torch.empty_like(z)
        # slayer compares in float32: v >= thr (Spike) and integer v >= thr * 4096 (reset)
        thr_f = float(torch.tensor(thr, dtype=torch.float32))
        thr4096_f = float(torch.tensor(thr * 4096, dtype=torch.float32))
        kernel().cuba_forward(z.data_ptr(), spikes.data_ptr(), voltage.data_ptr(), *layout,
                              int(cd), int(vd), thr_f, thr4096_f)
        learned = cd.requires_grad or vd.requires_grad
        ctx.save_for_backward(voltage, cd, vd, z if learned else None)
        ctx.consts = (thr_f, tau, scale, layout, time_major)
        return spikes, voltage

    @staticmethod
    def backward(ctx, g_spikes, g_voltage):
        voltage, cd, vd, z = ctx.saved_tensors
        thr_f, tau, scale, layout, time_major = ctx.consts
        f32 = torch.float32
        # The same float32 scalars slayer's autograd functions compute.
        dc = float(1 - cd.to(f32) / (1 << 12))
        dv = float(1 - vd.to(f32) / (1 << 12))
        tau_t, scale_t = torch.tensor(tau, dtype=f32), torch.tensor(scale, dtype=f32)
        a = float(scale_t / 2 / tau_t)
        g_x = torch.empty_like(voltage)
        gs = g_spikes.contiguous() if g_spikes is not None else None
        gv = g_voltage.contiguous() if g_voltage is not None else None
        kernel().cuba_backward(gs.data_ptr() if gs is not None else None,
                               gv.data_ptr() if gv is not None else None,
                               voltage.data_ptr(), g_x.data_ptr(), *layout, dc, dv, thr_f, a,
                               float(tau_t))
        g_cd = g_vd = None
        if z is not None:                # learned decays: slayer's leaky-integrator gradients
            g_cd, g_vd = _decay_grads(z, voltage, g_x, cd, dc, time_major)
        return g_x, g_cd, g_vd, None, None, None, None


def _decay_grads(z, voltage, g_x, cd, dc: float, time_major: bool) -> tuple:
    """The decays' gradients as slayer's `_li_dynamics_bwd` gives them (without its sign and
    1/4096: its convention): current decay sum_t g_x[t] c[t-1], voltage decay
    sum_t g_c[t] v[t-1], with c the current the kernel computed (recomputed here with its
    operations) and g_c[t] = g_x[t] - dc g_x[t+1] the voltage integrator's input gradient
    (equal to the kernel's up to float rounding)."""
    tdim = 1 if time_major else -1
    x, v, gx = (t.movedim(tdim, 0) for t in (z, voltage, g_x))
    ci = float(4096 - int(cd))
    cur = torch.zeros(x.shape[1:], dtype=torch.float64)
    currents = []
    for t in range(x.shape[0] - 1):              # c[t] for t < T - 1
        cur = torch.trunc(cur * ci / 4096.0) + torch.trunc((x[t] * 4096.0).double())
        currents.append(cur.float() / 4096.0)
    c = torch.stack(currents) if currents else x[:0]
    gc = gx.clone()
    gc[:-1] -= dc * gx[1:]
    g_cd = (gx[1:] * c).sum().reshape(1)
    g_vd = (gc[1:] * v[:-1]).sum().reshape(1)
    return g_cd.to(cd.dtype), g_vd.to(cd.dtype)


def _torch_voltage(neuron, z, thr, cd, vd):
    """slayer's PyTorch leaky integrators (current, then voltage with reset), on any device."""
    from lava.lib.dl.slayer.neuron.dynamics.leaky_integrator import _LIDynamics
    state = torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
    _LIDynamics.DEBUG = False    # its debug mode would call the CUDA kernels we avoid
    current = _LIDynamics.apply(z.contiguous(), cd, state, -1, neuron.s_scale)
    return _LIDynamics.apply(current, vd, state, thr, neuron.s_scale)


def _run(neuron, z, impl):
    """(spikes, voltage) of the torch or fused path; spikes before dropout."""
    _check(neuron, z)
    thr, cd, vd, tau, scale = _params(neuron)
    if impl == "fused":
        return _Fused.apply(z, cd, vd, thr, tau, scale)
    from lava.lib.dl.slayer.spike.spike import Spike
    v = _torch_voltage(neuron, z, thr, cd, vd)
    return Spike.apply(v, thr, tau, scale, False, torch.zeros_like(v[..., 0]), 1), v


def spikes(neuron, z: torch.Tensor, impl: str) -> torch.Tensor:
    """The block's spike train for synaptic input `z` (N, ..., T), dropout included."""
    if impl == "slayer":
        return neuron(z)
    out, _ = _run(neuron, z, impl)
    return neuron.drop(out) if neuron.drop is not None else out


def voltage(neuron, z: torch.Tensor, impl: str) -> torch.Tensor:
    """The block's membrane voltage for synaptic input `z` (the readout layer)."""
    if impl == "slayer":
        return neuron.dynamics(z)[1]
    if impl == "fused":
        return _run(neuron, z, impl)[1]
    _check(neuron, z)
    thr, cd, vd, _, _ = _params(neuron)
    return _torch_voltage(neuron, z, thr, cd, vd)


def fused_time_major(neuron, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(spikes, voltage) of the fused kernel on time-major input `z` (N, T, ...features): tna's
    CPU training layout (tna.models.snn), same arithmetic as `spikes`/`voltage`; no dropout."""
    _check(neuron, z, time_major=True)
    thr, cd, vd, tau, scale = _params(neuron)
    return _Fused.apply(z, cd, vd, thr, tau, scale, True)
