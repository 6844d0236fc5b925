"""How Intel's Loihi 2 compiler maps a netx net onto neurocores: an estimate, fitted to the
compiler's own printouts of three nets (../shared/loihi2; docs/loihi2-estimate.md).

Synaptic memory is counted in 64-bit words (the compiler's SynMem units; budget 12000 a core):
- dense: one synapse list per input axon per core, holding every neuron of the core's tile,
  zero weights included: ceil((n * (b + 12) + 1) / 64) words per axon, b the weight bits
  (netx's num_weight_bits; 7 is stored as 8, as on Loihi 1, whose weight-bit map has no 7);
- conv: one list per (input channel, kernel row, kernel column), holding the tile's output
  channels at b bits each and no index: ceil(C * b / 64) words (a grouped conv: a group's
  lists hold its own output channels); b is the sign plus the bits of
  the largest |weight| as unmodified netx passes them (8-bit, exponent 0), else the dense rule.
Splitting:
- dense: neurons in equal chunks of ceil(N / k); k starts at 1 and is multiplied by
  ceil(fullest core / budget) until every core fits (the compiler's "max_ratio"); then, if a
  core's list per axon is longer than 32 words, the chunks shrink until none is (inferred
  from one printout: Oxford's 256-neuron layer takes 3 cores where 2 would hold its 8,200
  words; any bound of 32 to 40 words gives it 3 and leaves every other printed layer as
  printed, and 32 is taken);
- conv: along W only, x the largest power of two up to W with x * H * C < 4096 neurons, then
  (beyond the printouts) along H and C while a tile's neurons or synaptic memory do not fit.
Every core holds one layer: one neuron group; a dense core receives one axon per input, a
conv core's input axons are not modelled (the printouts show 1 or 2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tna import netx
from tna.estimate.config import EstimateConfig

WORD_BITS = 64            # a synaptic memory word
LIST_HEADER_BITS = 1      # per dense synapse list (fitted: more than 0, at most 8)


@dataclass
class LayerFit:
    """One layer's mapping; per-core figures are the fullest core's."""
    index: int                     # position in model.layers
    type: str
    shape: tuple                   # netx shape: dense (n,), conv (C, H, W)
    cores: int = 0
    tile: tuple = ()               # what one core holds: dense (n,), conv (x, y, c) = (W, H, C)
    neurons: int = 0               # per core
    groups: int = 0                # neuron groups per core
    axons_in: int | None = None    # input axons per core (None: not modelled, conv)
    axon_map: int = 0              # output axon map entries per core
    syn_mem: int = 0               # synaptic memory per core, 64-bit words
    weight_bits: int = 0           # bits one stored weight takes (as the compiler counts)
    binding: str = ""              # the limit that set the split ('' when one core holds it)
    problem: str | None = None     # why the layer cannot be mapped (then cores = 0)
    violations: list = field(default_factory=list)   # fullest-core synaptic memory of each split
                                   # the compiler rejects on the way (its "Violation" lines)
    slices: list = field(default_factory=list, repr=False)   # per core: index arrays into the
                                   # layer's neurons (slayer order), for activity per core

    def to_dict(self) -> dict:
        return {"layer": f"layer/{self.index}", "type": self.type, "shape": list(self.shape),
                "cores": self.cores, "tile": list(self.tile), "neurons_per_core": self.neurons,
                "neuron_groups_per_core": self.groups, "axons_in_per_core": self.axons_in,
                "axon_map_per_core": self.axon_map, "syn_mem_words_per_core": self.syn_mem,
                "weight_bits": self.weight_bits, "binding": self.binding or None,
                "violations": self.violations, "problem": self.problem}


def stored_bits(num_weight_bits: int) -> int:
    """Bits a weight of netx's num_weight_bits takes in synaptic memory (no 7-bit weights)."""
    return 8 if num_weight_bits == 7 else int(num_weight_bits)


def dense_words_per_axon(neurons: int, bits: int, extra_bits: int) -> int:
    """Words of one input axon's synapse list over `neurons` neurons of `bits`-bit weights,
    each synapse taking `extra_bits` more (EstimateConfig.dense_extra_bits)."""
    if neurons == 0:
        return 0
    return math.ceil((neurons * (bits + extra_bits) + LIST_HEADER_BITS) / WORD_BITS)


def conv_bits(layer: netx.Layer, loader: str) -> int:
    """Bits of one conv weight: unmodified netx passes the file's integers at 8 bits, and the
    compiler stores sign + magnitude bits of the largest; tna's loader gives conv layers
    netx's dense rule (num_weight_bits)."""
    if loader == "tna":
        return stored_bits(netx.weight_bits(layer, "tna")[0])
    w = int(np.abs(np.asarray(layer.weight).astype(int)).max())
    return 1 + w.bit_length()


def _chunks(n: int, k: int) -> list:
    size = math.ceil(n / k)
    return [np.arange(lo, min(lo + size, n)) for lo in range(0, n, size)]


def _fit_dense(fit: LayerFit, layer: netx.Layer, cfg: EstimateConfig) -> None:
    n = int(np.prod(layer.shape))
    axons = int(netx.dense_matrix(layer).shape[1])
    bits = stored_bits(netx.weight_bits(layer, cfg.loader)[0])
    fit.weight_bits, fit.axons_in, fit.groups = bits, axons, 1
    if axons > cfg.axons_in:
        fit.problem = (f"{axons} inputs need {axons} input axons on every core, over the "
                       f"{cfg.axons_in} a core has; the compiler does not split a dense "
                       f"layer's inputs: add a layer with fewer outputs before it")
        return
    extra = cfg.dense_extra_bits
    one = axons * dense_words_per_axon(1, bits, extra)
    if one > cfg.syn_mem:
        fit.problem = (f"one neuron's {axons} synapses need {one} words of synaptic memory, "
                       f"over the {cfg.syn_mem} a core has; use fewer inputs or fewer weight "
                       f"bits")
        return
    k, binding = max(1, math.ceil(n / cfg.neurons)), "neurons" if n > cfg.neurons else ""
    while True:
        chunks = _chunks(n, k)
        fullest = axons * dense_words_per_axon(len(chunks[0]), bits, extra)
        if fullest <= cfg.syn_mem:
            break
        fit.violations.append(fullest)
        k = min(n, k * math.ceil(fullest / cfg.syn_mem))
        binding = "synaptic memory"
    # then the longest list an axon may have bounds a core's neurons (inferred: the module's
    # docstring)
    per_list = max(1, (cfg.list_words * WORD_BITS - LIST_HEADER_BITS) // (bits + extra))
    if len(chunks[0]) > per_list:
        chunks = _chunks(n, math.ceil(n / per_list))
        fullest = axons * dense_words_per_axon(len(chunks[0]), bits, extra)
        binding = "synapse list length"
    fit.cores, fit.slices = len(chunks), chunks
    fit.tile = (len(chunks[0]),)
    fit.neurons = fit.axon_map = len(chunks[0])
    fit.syn_mem = fullest
    fit.binding = binding


def _conv_tiles(shape: tuple, cfg: EstimateConfig, words, list_words) -> tuple:
    """(x, y, c) of the tile, and the limit that set it; `words(c)` = synaptic memory of a
    tile of c output channels, `list_words(c)` its longest synapse list."""
    c_all, h_all, w_all = shape
    x = 1
    while x * 2 <= w_all and x * 2 * h_all * c_all < cfg.neurons:
        x *= 2
    # what stopped x: the neuron budget, or the power-of-two tiling (the compiler gives a
    # (20, 2, 64) conv two tiles of 16 columns, though 2,560 neurons fit one core)
    binding = "" if x >= w_all else ("power-of-two tiles" if x * 2 >= w_all else "neurons")
    y, c = h_all, c_all
    while x * y * c >= cfg.neurons and y > 1:          # beyond the printouts: halve H, then C
        y, binding = math.ceil(y / 2), "neurons"
    while (x * y * c >= cfg.neurons or words(c) > cfg.syn_mem or list_words(c) > cfg.list_words) \
            and c > 1:
        binding = ("neurons" if x * y * c >= cfg.neurons else "synaptic memory"
                   if words(c) > cfg.syn_mem else "synapse list length")
        c = math.ceil(c / 2)
    return (x, y, c), binding


def _fit_conv(fit: LayerFit, layer: netx.Layer, cfg: EstimateConfig) -> None:
    c_all, h_all, w_all = (int(s) for s in layer.shape)
    w = np.asarray(layer.weight)
    bits = conv_bits(layer, cfg.loader)
    taps = int(np.prod(w.shape[1:]))                   # in/groups x kh x kw lists per group
    per_group = max(1, c_all // int(layer.groups or 1))    # output channels of one group

    def list_words(c):     # one list: the tile's output channels of one group
        return math.ceil(min(c, per_group) * bits / WORD_BITS)

    def words(c):      # a tile of c output channels: the lists of each group it touches
        return math.ceil(c / per_group) * taps * list_words(c)

    (x, y, c), binding = _conv_tiles((c_all, h_all, w_all), cfg, words, list_words)
    fit.weight_bits, fit.groups, fit.tile = bits, 1, (x, y, c)
    if words(c) > cfg.syn_mem:
        fit.problem = (f"one output channel's kernel needs {words(c)} words of synaptic "
                       f"memory, over the {cfg.syn_mem} a core has")
        return
    idx = np.arange(c_all * h_all * w_all).reshape(c_all, h_all, w_all)
    fit.slices = [idx[c0:c0 + c, y0:y0 + y, x0:x0 + x].reshape(-1)
                  for c0 in range(0, c_all, c) for y0 in range(0, h_all, y)
                  for x0 in range(0, w_all, x)]
    fit.cores = len(fit.slices)
    fit.neurons = x * y * c
    fit.axon_map = fit.neurons
    fit.syn_mem = words(c)
    fit.binding = binding


def _fit_neurons_only(fit: LayerFit, layer: netx.Layer, cfg: EstimateConfig) -> None:
    """An input layer with a neuron (an encoder): neurons, no synapses."""
    n = int(np.prod(layer.shape))
    k = max(1, math.ceil(n / cfg.neurons))
    fit.slices = _chunks(n, k)
    fit.cores, fit.groups = len(fit.slices), 1
    fit.neurons = fit.axon_map = len(fit.slices[0])
    fit.tile = (fit.neurons,)
    fit.binding = "neurons" if k > 1 else ""     # the data comes in on a_in, not on axons


# Layer type -> how its neurons are placed; layers without neurons (flatten, a shape-only
# input) take no core.
_FITTERS = {"dense": _fit_dense, "conv": _fit_conv, "input": _fit_neurons_only}


def fit_layers(model: netx.NetxModel, cfg: EstimateConfig) -> list[LayerFit]:
    """One `LayerFit` per layer that holds neurons, in the file's order."""
    out = []
    for i, layer in enumerate(model.layers):
        if netx.neuron_of(layer) is None:
            continue
        fit = LayerFit(index=i, type=layer.type, shape=tuple(int(s) for s in layer.shape))
        fitter = _FITTERS.get(layer.type)
        if fitter is None:
            fit.problem = (f"the estimate maps dense and conv layers, not '{layer.type}'")
        else:
            try:
                fitter(fit, layer, cfg)
            except ValueError as e:            # a weight netx cannot load (e.g. all zeros)
                fit.problem = str(e)
        out.append(fit)
    return out
