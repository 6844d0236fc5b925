"""Lava processes and process models used by `tna.lava.runner`.

1. Processes that stream data between a running network and memory-mapped files.

lava-nc's own `io.source.RingBuffer` / `io.sink.RingBuffer` hold their data in Lava Vars, and
`Var.get()` / `Var.set()` move an array one element per message (measured: far slower than the
network itself for a 10k-sample run). These processes instead open a `numpy.memmap` file inside
their process model (Lava forks one OS process per model), so the parent writes the whole input
once and reads the outputs after `run` returns, with no per-element messaging.

Every file is time-major: row `t` holds the data of Lava time step `t + 1` (Lava counts from 1).

2. `PyConvModelBitAcc`: lava-nc's fixed-point Conv model, plus the weight handling of its
bit-accurate Dense model (clip to 8 bits, truncate to `num_weight_bits`, shift the sum by
`weight_exp`) for synapses configured with weight bits or an exponent. lava-nc's own conv model
ignores both Vars; unmodified netx sets neither (8 bits, exponent 0), and then this model is
lava-nc's. tna's netx loader (tna.lava.net) sets them, e.g. 2 bits for ternary kernels.

`PyFastConvModelFixed`, a drop-in process model for `lava.proc.conv.process.Conv`. lava-nc's
fixed-point model computes a convolution with one `scipy.signal.convolve2d` call per (output,
input) channel pair (2,560 calls per step for a 16-32-64 channel net: ~90% of the run time).
This model computes the same float64 sums with one BLAS matrix product per kernel tap and then
applies lava-nc's own cast and 24-bit wrap, so its output is bit-identical (tested against
`lava.proc.conv.utils.conv`); float64 sums of integers are exact below 2**53.

3. `PyVoltageWriterLifReset`: lava-nc's bit-accurate LIFReset model that also writes v after
each step into a memmap file when its process's parameters name one (`V_FILE_KEY`); a
RefPort probe (Monitor, io.sink.Read) instead costs an extra management phase per step and
does not work with asynchronous models.

4. `AsyncSimCfg`: Loihi2SimCfg that runs each selected PyLoihiProcessModel as lava-nc's own
asynchronous conversion (`PyLoihiModelToPyAsyncModel`): the same `run_spk` per time step, but
processes are paced only by their data ports instead of a runtime handshake per phase
(measured 1.5-2x faster, bit-identical). Such a run cannot be resumed or stopped mid-way:
run all steps in one `run` call.

This module imports Lava at import time; import it only inside functions that run Lava.
"""
import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiModelToPyAsyncModel, PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.conv import utils as conv_utils
from lava.proc.conv.models import PyConvModelFixed
from lava.proc.conv.process import Conv
from lava.proc.lif.models import PyLifResetModelBitAcc
from lava.proc.lif.process import LIFReset
from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

#: Key in a LIFReset process's proc_params: (path, num_steps, shape) of the file its v goes to.
V_FILE_KEY = "tna_v_file"
#: num_weight_bits Lava gives a Conv that nobody configured (netx's create_conv).
DEFAULT_WEIGHT_BITS = 8


def _open(proc_params, mode):
    return np.memmap(proc_params["path"], dtype=np.dtype(proc_params["dtype"]), mode=mode,
                     shape=(proc_params["num_steps"], *proc_params["shape"]))


class MemmapSource(AbstractProcess):
    """Sends row `t - 1` of a (num_steps, *shape) memmap file at Lava step `t`."""

    def __init__(self, *, shape: tuple, path: str, num_steps: int, dtype: str) -> None:
        super().__init__(shape=shape, path=path, num_steps=num_steps, dtype=dtype)
        self.s_out = OutPort(shape=shape)


class MemmapSink(AbstractProcess):
    """Writes what arrives at Lava step `t` into row `t - 1` of a memmap file (int32).

    After each step it also stores `t` in the one-element int64 file `progress_path`.
    """

    def __init__(self, *, shape: tuple, path: str, num_steps: int, progress_path: str) -> None:
        super().__init__(shape=shape, path=path, num_steps=num_steps, dtype="int32",
                         progress_path=progress_path)
        self.a_in = InPort(shape=shape)


@implements(proc=MemmapSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyMemmapSource(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.data_file = _open(proc_params, "r")

    def run_spk(self) -> None:
        self.s_out.send(np.asarray(self.data_file[self.time_step - 1], dtype=np.int32))


@implements(proc=MemmapSink, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyMemmapSink(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)

    # Attribute names without a leading underscore: the async conversion copies only those.
    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.data_file = _open(proc_params, "r+")
        self.progress_file = np.memmap(proc_params["progress_path"], dtype=np.int64, mode="r+",
                                       shape=(1,))

    def run_spk(self) -> None:
        self.data_file[self.time_step - 1] = self.a_in.recv()
        self.progress_file[0] = self.time_step


class PyVoltageWriterLifReset(PyLifResetModelBitAcc):
    """Bit-accurate LIFReset that also writes v after step `t` into row `t - 1` of a file."""

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        spec = proc_params.get(V_FILE_KEY)
        self.v_file = None
        if spec is not None:
            path, num_steps, shape = spec
            self.v_file = np.memmap(path, dtype=np.int32, mode="r+", shape=(num_steps, *shape))

    def run_spk(self) -> None:
        # Not super(): the async conversion calls this with an instance of another class.
        PyLifResetModelBitAcc.run_spk(self)
        if self.v_file is not None:
            self.v_file[self.time_step - 1] = self.v


def fast_conv(input_: np.ndarray, weight: np.ndarray, kernel_size, stride, padding, dilation,
              groups: int) -> np.ndarray:
    """Same result as `lava.proc.conv.utils.conv` (XYC input, (out, kx, ky, in) weight)."""
    out_x, out_y, out_c = conv_utils.output_shape(input_.shape, weight.shape[0], kernel_size,
                                                  stride, padding, dilation)
    padded = np.pad(np.asarray(input_, dtype=np.float64),
                    ((padding[0], padding[0]), (padding[1], padding[1]), (0, 0)))
    # lava-nc convolves (flipped kernel); correlate with the flipped weight instead.
    flipped = np.asarray(weight, dtype=np.float64)[:, ::-1, ::-1, :]
    out = np.zeros((out_x, out_y, out_c))
    in_per_group, out_per_group = input_.shape[2] // groups, out_c // groups
    for g in range(groups):
        cin = slice(g * in_per_group, (g + 1) * in_per_group)
        cout = slice(g * out_per_group, (g + 1) * out_per_group)
        for i in range(kernel_size[0]):
            x0 = i * dilation[0]
            for j in range(kernel_size[1]):
                y0 = j * dilation[1]
                patch = padded[x0:x0 + stride[0] * (out_x - 1) + 1:stride[0],
                               y0:y0 + stride[1] * (out_y - 1) + 1:stride[1], cin]
                out[..., cout] += patch @ flipped[cout, i, j, :].T
    return out.astype(weight.dtype)  # the same cast as lava-nc's conv


def _conv_step(model, conv) -> None:
    """One step of a fixed-point Conv model computing its sum with `conv` (lava-nc's signature).

    Weights with bits or an exponent set are clipped and truncated once, as PyDenseModelBitAcc
    does, and the sum is scaled by 2**weight_exp before lava-nc's 24-bit wrap. A module function,
    not a method: the async conversion runs `run_spk` on an instance of another class.
    """
    if model.a_buf is None:
        model.a_buf = np.zeros_like(model.a_out.shape)
    model.a_out.send(model.a_buf)
    if model.num_message_bits.item() > 0:
        s_in = model.s_in.recv()
    else:
        s_in = model.s_in.recv().astype(bool)
    bits, exp = int(model.num_weight_bits.item()), int(model.weight_exp.item())
    configured = (bits, exp) != (DEFAULT_WEIGHT_BITS, 0)
    if configured and not model.weights_set:
        sign = determine_sign_mode(model.weight)
        model.weight = truncate_weights(clip_weights(model.weight, sign, num_bits=8), sign, bits)
        model.weights_set = True
    a_out = conv(s_in, model.weight, model.kernel_size, model.stride, model.padding,
                 model.dilation, model.groups[0])
    if configured:
        a_out = np.left_shift(a_out, exp) if exp > 0 else np.right_shift(a_out, -exp)
    model.a_buf = conv_utils.signed_clamp(a_out, bits=24)


class PyConvModelBitAcc(PyConvModelFixed):
    """lava-nc's fixed-point Conv (its own convolution) honouring num_weight_bits and weight_exp."""

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.weights_set = False       # no leading underscore: the async conversion copies it

    def run_spk(self) -> None:
        _conv_step(self, conv_utils.conv)


class PyFastConvModelFixed(PyConvModelBitAcc):
    """`PyConvModelBitAcc` with `fast_conv` in place of lava-nc's per-channel scipy loop."""

    def run_spk(self) -> None:
        _conv_step(self, fast_conv)


#: Exact, faster replacements for lava-nc's fixed-point models (selected by process class).
FAST_MODELS = {Conv: PyFastConvModelFixed, LIFReset: PyVoltageWriterLifReset}


#: lava-nc's models, with Conv honouring weight bits (what `StockSimCfg` selects by class).
STOCK_MODELS = {Conv: PyConvModelBitAcc, LIFReset: PyVoltageWriterLifReset}


class StockSimCfg(Loihi2SimCfg):
    """Loihi2SimCfg(fixed_pt) with lava-nc's own models and runtime handshake.

    The exceptions: LIFReset's model is lava-nc's own bit-accurate model plus a writer of v
    after each step (an observer; the arithmetic is lava-nc's), and Conv's is lava-nc's plus the
    weight bits and exponent tna's loader sets (`PyConvModelBitAcc`; lava-nc's own otherwise).
    """

    def __init__(self) -> None:
        super().__init__(select_tag="fixed_pt", exception_proc_model_map=STOCK_MODELS)


class AsyncSimCfg(Loihi2SimCfg):
    """Loihi2SimCfg(fixed_pt) whose Py-Loihi models run as their asynchronous conversions."""

    _converted: dict = {}  # model class -> async class; one conversion per class and process

    def __init__(self) -> None:
        super().__init__(select_tag="fixed_pt", exception_proc_model_map=dict(FAST_MODELS))

    def select(self, process, proc_models):
        model = super().select(process, proc_models)
        if isinstance(model, type) and issubclass(model, PyLoihiProcessModel):
            if model not in self._converted:
                self._converted[model] = _keep_static(PyLoihiModelToPyAsyncModel(model), model)
            return self._converted[model]
        return model


def _keep_static(converted: type, model: type) -> type:
    """lava-nc's conversion copies a model's callables as plain functions, so a staticmethod
    (e.g. PyDelayDenseModelBitAcc's get_delay_wgts_mat) would get `self` as an extra argument:
    put the static and class methods back as they were."""
    for klass in reversed(model.__mro__):
        for name, attr in vars(klass).items():
            if isinstance(attr, (staticmethod, classmethod)) and name in vars(converted):
                setattr(converted, name, attr)
    return converted
