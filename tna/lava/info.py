"""Facts read back from Lava itself (imports Lava: call only where it is needed)."""
from __future__ import annotations

import contextlib
import io


def prepare_lava_import() -> None:
    """Let Lava be imported after torch has fixed the multiprocessing start method.

    Lava's runtime calls `multiprocessing.set_start_method('fork')` at import, which raises
    'context has already been set' once anything (e.g. a torch CPU forward) has asked for the
    start method. Lava needs 'fork': set it (forcing if needed) and import Lava's runtime with
    the second call made harmless.
    """
    import multiprocessing as mp
    import sys
    from unittest import mock

    if "lava.magma.runtime.message_infrastructure.multiprocessing" in sys.modules:
        return
    # lava-dl's modules import torch.utils.cpp_extension, which prints a CUDA note on stderr.
    import contextlib
    import io
    with contextlib.redirect_stderr(io.StringIO()):
        import torch.utils.cpp_extension  # noqa: F401
    if mp.get_start_method(allow_none=True) != "fork":
        mp.set_start_method("fork", force=True)
    with mock.patch.object(mp, "set_start_method", lambda *a, **k: None):
        import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401


def _param(proc, name):
    """A process parameter as Lava holds it: a Var's init, else its proc_params entry."""
    var = getattr(proc, name, None)
    if var is not None and hasattr(var, "init"):
        v = var.init
        return int(v.reshape(-1)[0]) if hasattr(v, "reshape") else int(v)
    params = getattr(proc, "proc_params", None)
    if params is not None and name in params._parameters:
        return int(params[name])
    return None


def loaded_weight_bits(path, loader: str = "netx") -> list[tuple]:
    """(netx layer index, type, num_weight_bits, weight_exp) per synapse, as Lava holds them
    after `loader` ('netx': unmodified netx.hdf5.Network; 'tna': tna.lava.net) built it."""
    from tna.netx import BLOCK_TYPES, read_net
    prepare_lava_import()
    with contextlib.redirect_stdout(io.StringIO()):   # netx prints its layer table
        from tna.lava.net import load_network
        net = load_network(path, loader)
    types = [layer.type for layer in read_net(path).layers]
    ids = [i for i, t in enumerate(types) if t in BLOCK_TYPES]      # one synapse each
    blocks = [b for b in net.layers if hasattr(b, "synapse")]       # not an Input block
    rows = []
    for i, block in zip(ids, blocks):
        syn = block.synapse
        bits = _param(syn, "num_weight_bits")
        exp = _param(syn, "weight_exp")
        rows.append((i, types[i], bits, exp))
    net_file = getattr(net, "net_config", None)
    with contextlib.suppress(Exception):
        net_file.f.close()
    return rows
