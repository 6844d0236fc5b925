"""NIR (the Neuromorphic Intermediate Representation, PyPI `nir`) in and out of tna.

    export_nir(checkpoint_or_net, ExportConfig, dt) -> .nir     netx integers -> NIR floats, exact
    import_nir(path, ImportConfig) -> .net                      NIR floats -> netx integers
    run_nir(path, RunConfig, dt) -> NirRun                      import, run, and compare with the
                                                                graph's own float semantics

Units (slayer's float units are netx's integers over 64 or 4096; dt is seconds per step):

    netx / tna                       NIR
    weight w_int (dense, conv)       Affine / Conv2d weight = w_int / 64, bias 0
    pool as grouped conv, weight q   SumPool2d + w_in scaled by q / 64
    iDecay (1/4096 per step)         CubaLIF tau_syn = dt * 4096 / iDecay;  w_in = tau_syn / dt
    vDecay (1/4096 per step)         CubaLIF tau_mem = dt * 4096 / vDecay;  r = tau_mem / dt
    vThMant (2^6 units of v)         v_threshold = vThMant / 64;  v_reset = v_leak = 0
    voltage readout (never spikes)   CubaLI (no threshold) before the Output
    flatten                          Flatten (start_dim 0: NIR types have no batch axis)
    tna metadata (T, encoding, ...)  the graph's metadata; tna's own as JSON in 'tna_metadata'

A decay of 0 has no finite time constant: it is written as tau = dt * 2^24, which reads back as 0.
The discrete-time reading of each NIR neuron is in `tna.nir.semantics`; the rule that turns
floats into Loihi integers is in `tna.nir.read`.

`import tna.nir` stays light: the `nir` package, h5py and torch load only inside the functions.
"""
from tna.nir.config import DEFAULT_DT, FORMS, ImportConfig


def is_nir_file(path) -> bool:
    """True for an HDF5 file holding a NIR graph (a 'node' group, no 'layer'), else by the
    name: a missing or unreadable `.nir` is one (so its error says what a NIR file needs)."""
    from pathlib import Path
    p = Path(path)
    if not p.is_file():
        return p.suffix == ".nir"
    import h5py
    try:
        with h5py.File(p, "r") as f:
            return "node" in f and "layer" not in f
    except OSError:
        return p.suffix == ".nir"


def export_nir(checkpoint, cfg, dt: float | None = None, form: str | None = None):
    """Write a checkpoint's base net (or a .net file) as a NIR graph at `cfg.out`; its path.
    `dt` (s per step) and `form` ('portable': loads in snnTorch 1.0 and Norse 1.1, or
    'native', see FORMS) default to the ExportConfig's `dt` and `nir_form`, else DEFAULT_DT
    and 'portable'."""
    from tna.nir.write import export_nir as _export
    dt = dt if dt is not None else (cfg.dt if cfg.dt is not None else DEFAULT_DT)
    return _export(checkpoint, cfg, dt, form or cfg.nir_form or "portable")


def import_nir(path, cfg: ImportConfig = ImportConfig()):
    """Turn a NIR graph file into a netx file at `cfg.out`; returns (path, Conversion)."""
    from tna.nir.read import import_nir as _import
    return _import(path, cfg)


def run_nir(path, cfg, dt: float | None = None):
    """Import `path`, run it as `tna run` does, and compare with the graph's float semantics."""
    from tna.nir.run import run_nir as _run
    return _run(path, cfg, dt)


__all__ = ["DEFAULT_DT", "FORMS", "ImportConfig", "is_nir_file", "export_nir", "import_nir", "run_nir"]
