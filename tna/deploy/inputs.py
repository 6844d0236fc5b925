"""The inputs `tna run` feeds a net: a data split encoded as the net was trained, or a .npy.

Every array leaves here in slayer layout, (N, C, H, W, T) or (N, F, T), integers, checked
against what the net takes (shape, layout, value range), so that no mistake reaches a backend.

Layouts of a .npy (`--input-layout`): `chw` is tna's and slayer's (N?, C, H, W, T); `whc` is
netx's (x, y, z) = (W, H, C) order, as `net.inp.shape` reports it, time last (N?, W, H, C, T).
Without the flag the layout is the one the array's shape fits; one line says so when both fit.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tna import netx
from tna.console import log
from tna.errors import TnaError

LAYOUTS = ("chw", "whc")
INPUT_NEURON_MAX = 2**17 - 1    # x << 6 must stay inside an input neuron's 24-bit current


def load_npy(path, model: netx.NetxModel, layout: str | None = None,
             input_message_bits: int = 0) -> np.ndarray:
    """A .npy of integer inputs as (N, *input_shape, T), slayer layout; TnaError otherwise."""
    p = Path(path)
    if not p.is_file():
        raise TnaError(f"{p}: no such input file; give a .npy of integer inputs")
    try:
        x = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise TnaError(f"{p}: not a readable .npy array ({str(e)[:100]}); save it with "
                       f"numpy.save") from None
    if x.dtype.kind not in "biuf" or (x.dtype.kind == "f" and not np.all(np.isfinite(x))):
        raise TnaError(f"{p}: inputs must be finite numbers, got dtype {x.dtype}")
    if x.dtype.kind == "f" and np.any(x != np.round(x)):
        raise TnaError(f"{p}: inputs must be integers (spikes 0/1 or graded levels); encode "
                       f"your data first (tna quantises pixels as round(x / 255 * levels))")
    x = to_slayer_layout(x, netx.input_shape(model), layout, where=str(p))
    check_range(x, model, input_message_bits, where=str(p))
    return x.astype(np.int64)


def to_slayer_layout(x: np.ndarray, in_shape: tuple, layout: str | None, where: str):
    """(N?, sample..., T) in `layout` (or the one its shape fits) -> (N, *in_shape, T)."""
    if layout is not None and layout not in LAYOUTS:
        raise TnaError(f"input_layout = {layout!r}: choose chw (tna's C, H, W) or whc "
                       f"(netx's W, H, C)")
    n_in = int(np.prod(in_shape))
    sample = x.shape[:-1]
    for lead in (1, 0):               # with a batch axis, or one sample without it
        s = sample[lead:]
        if int(np.prod(s)) == n_in and len(s) in (1, 3) and x.ndim >= 2:
            chosen = _layout(s, in_shape, layout, where)
            if chosen is not None:
                y = x if lead else x[None]
                if chosen == "whc":
                    y = y.transpose(0, 3, 2, 1, 4)
                return y.reshape((len(y),) + tuple(in_shape) + (x.shape[-1],))
    want = " x ".join(map(str, in_shape))
    whc = " x ".join(map(str, in_shape[::-1])) if len(in_shape) == 3 else None
    raise TnaError(f"{where}: input shape {x.shape} does not fit the net's input {want} "
                   + (f"(C, H, W; netx order W, H, C: {whc}) " if whc else "")
                   + "plus time last, optionally after a leading batch axis")


def _layout(sample: tuple, in_shape: tuple, layout: str | None, where: str) -> str | None:
    """Which layout a sample shape is in, or None when it is neither."""
    sample, in_shape = tuple(sample), tuple(in_shape)
    if len(sample) == 1:              # flat: the (C, H, W) flatten order, as slayer's
        return "chw"
    fits = [name for name, shape in (("chw", in_shape), ("whc", in_shape[::-1]))
            if len(in_shape) == 3 and shape == sample]
    if len(in_shape) == 1:            # a dense first layer: (C, H, W) flattened in that order
        fits = ["chw"] if layout in (None, "chw") else ["whc"]
    if layout is not None:
        if layout not in fits:
            raise TnaError(f"{where}: a sample of shape {sample} is not the net's input in "
                           f"{layout} order ({_show(in_shape, layout)}); check "
                           f"--input-layout")
        return layout
    if len(fits) == 2:
        log(f"note: {where}: a sample of shape {sample} fits both C, H, W and W, H, C; "
            f"taking chw (tna's order): pass --input-layout whc for netx's")
    return fits[0] if fits else None


def _show(in_shape: tuple, layout: str) -> str:
    shape = in_shape[::-1] if layout == "whc" and len(in_shape) == 3 else in_shape
    return " x ".join(map(str, shape))


def value_range(model: netx.NetxModel, input_message_bits: int) -> tuple[int, int, str]:
    """(lowest, highest, what sets them) of the values the net's input takes."""
    meta = model.meta
    if netx.has_input_neuron(model):
        return (-INPUT_NEURON_MAX, INPUT_NEURON_MAX,
                "an input neuron's current (x << 6 in 24 bits)")
    if meta is not None and meta.encoding == "direct" and input_message_bits:
        top = 2**meta.input_bits - 1
        return 0, top, f"the net's direct encoding ({meta.input_bits} input bits)"
    if input_message_bits == 0:
        return 0, 1, "binary spikes (input message bits 0; pass --input-message-bits for " \
                     "graded input)"
    top = 2**input_message_bits - 1
    return -top, top, f"{input_message_bits}-bit graded spikes (--input-message-bits)"


def check_range(x: np.ndarray, model: netx.NetxModel, input_message_bits: int,
                where: str) -> None:
    """Refuse values the net's input cannot take, in one line naming the range."""
    if not x.size:
        return
    lo, hi, what = value_range(model, input_message_bits)
    x_lo, x_hi = int(x.min()), int(x.max())
    if x_lo < lo or x_hi > hi:
        raise TnaError(f"{where}: values {x_lo}..{x_hi}, but the net takes {lo}..{hi}: {what}; "
                       f"encode your data to that range")


def dataset_inputs(model: netx.NetxModel, cfg) -> tuple[np.ndarray, np.ndarray]:
    """The data split `cfg` names (default: the file's data set), encoded as the net was
    trained: (inputs (N, *input_shape, T), labels)."""
    from tna.data import DataConfig, load_data
    meta = model.meta
    name = cfg.dataset or (meta.dataset if meta else None)
    if not name:
        raise TnaError("this file has no tna metadata naming its data set; pass --dataset or "
                       "--input spikes.npy")
    dcfg = DataConfig(dataset=name, data_dir=cfg.data_dir, augment=False,
                      encoding=meta.encoding if meta else "rate",
                      input_bits=meta.input_bits if meta else 4,
                      timesteps=cfg.timesteps or (meta.timesteps if meta else 5))
    data = load_data(dcfg, batch_size=1000)
    loader = data.val if cfg.split == "val" and data.val is not None else data.test
    xs, ys, n = [], [], 0
    for x, y in loader.batches(0):
        xs.append(x.numpy())
        ys.append(y.numpy())
        n += len(y)
        if cfg.limit and n >= cfg.limit:
            break
    x, y = np.concatenate(xs), np.concatenate(ys)
    if cfg.limit:
        x, y = x[:cfg.limit], y[:cfg.limit]
    in_shape = netx.input_shape(model)
    if int(np.prod(x.shape[1:-1])) != int(np.prod(in_shape)) or (
            len(in_shape) == 3 and tuple(x.shape[1:-1]) != tuple(in_shape)):
        raise TnaError(f"data set {name} gives samples {x.shape[1:-1]} but the net expects "
                       f"{tuple(in_shape)}; pass the data set it was trained on")
    return x.reshape((len(x),) + tuple(in_shape) + (x.shape[-1],)).astype(np.int64), y
