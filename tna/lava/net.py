"""tna's netx loader: `lava.lib.dl.netx.hdf5.Network` with ternary conv layers at 2 bits.

netx's `create_dense` puts every dense weight matrix through `optimize_weight_bits`, so a ternary
{-64, 0, 64} layer reaches Lava as 2-bit weights (exponent -1); its `create_conv` does not, so
every conv synapse keeps Lava's default 8 bits whatever its values. `Network` here is netx's
loader with one change: conv kernels get the same `optimize_weight_bits` (num_weight_bits,
weight_exp and the shifted kernel, set on the Conv synapse). Nothing else differs.

lava-nc's fixed-point conv model ignores `num_weight_bits` and `weight_exp`; simulate nets
loaded here with tna's run configurations (`tna.lava.procs`: `AsyncSimCfg`,
`StockSimCfg`, `STOCK_MODELS`), whose conv model applies them as lava-nc's bit-accurate Dense model
does. The result equals the 8-bit load bit for bit (tests/lava/test_net.py).

This module imports Lava at import time; import it only inside functions that run Lava.
"""
from __future__ import annotations

import numpy as np
from lava.lib.dl.netx import hdf5
from lava.lib.dl.netx.blocks.models import AbstractPyBlockModel
from lava.lib.dl.netx.utils import optimize_weight_bits
from lava.magma.core.decorator import implements
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class Network(hdf5.Network):
    """`netx.hdf5.Network` whose conv synapses get netx's `optimize_weight_bits` too."""

    @staticmethod
    def create_conv(*args, **kwargs):
        block, table = hdf5.Network.create_conv(*args, **kwargs)
        syn = block.synapse
        weight = np.asarray(syn.weight.init)
        if np.any(weight):                   # optimize_weight_bits fails on an all-zero kernel
            weight, bits, exp, _ = optimize_weight_bits(weight)
            # Vars are read when the network compiles, so setting their init here is enough.
            syn.weight.init = weight.astype(np.int32)
            syn.num_weight_bits.init = bits
            syn.weight_exp.init = exp
        return block, table


@implements(proc=Network, protocol=LoihiProtocol)
class PyNetworkModel(AbstractPyBlockModel):
    """netx's own sub-process model of its Network; Lava looks for models next to the process."""


#: Loader name (tna.netx.LOADERS) -> the Lava process class that builds the network.
NETWORKS = {"tna": Network, "netx": hdf5.Network}


def load_network(path, loader: str = "tna", **kwargs) -> hdf5.Network:
    """Build the Lava network of the netx file at `path` with `loader` ('tna' or 'netx');
    `kwargs` go to `netx.hdf5.Network` (input_message_bits, reset_interval, ...)."""
    return NETWORKS[loader](net_config=str(path), **kwargs)
