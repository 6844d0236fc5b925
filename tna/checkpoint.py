"""Checkpoints: plain dicts written atomically, read with `torch.load(weights_only=True)`.

    {format, version, model, twin, optimizer, scheduler, epoch, rng, config, model_spec,
     data, compression, metrics, best_val}

`model` is the base network's state dict (latent weights), `model_spec` rebuilds it, and
`compression` says which hidden layers run ternary/binary so the rebuilt model does the same.
"""
from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import torch

from tna.atomic import atomic_path
from tna.errors import TnaError

FORMAT = "tna-checkpoint"
VERSION = 1


def save(state: dict, path) -> Path:
    state = {"format": FORMAT, "version": VERSION, **state}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def resolve(path) -> Path:
    """A run folder means its best.pt (else checkpoint.pt)."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "checkpoint.pt"):
            if (path / name).is_file():
                return path / name
        raise TnaError(f"{path}: no best.pt or checkpoint.pt in this folder; give a run folder "
                       f"written by `tna train` or a .pt file")
    if not path.is_file():
        raise TnaError(f"{path}: no such checkpoint; give a run folder or a .pt file")
    return path


def load(path) -> dict:
    """Load and check a checkpoint without executing pickled code."""
    from tna.files import not_a_checkpoint
    path = resolve(path)
    why = not_a_checkpoint(path)
    if why is not None:
        raise TnaError(why)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message advises weights_only=False, i.e. running the file's code: never.
        detail = str(e).rpartition("WeightsUnpickler error: ")[2].splitlines()[0][:100]
        raise TnaError(f"{path}: refused to load, it holds more than plain tensors ({detail}); "
                       f"tna never runs code from a checkpoint, use a checkpoint.pt or best.pt "
                       f"written by `tna train`") from None
    except Exception as e:   # torch raises many types for corrupt or unsafe files
        msg = str(e).splitlines()[0][:150] if str(e) else type(e).__name__
        raise TnaError(f"{path}: not a readable tna checkpoint ({msg}); use a checkpoint.pt or "
                       f"best.pt written by `tna train`") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise TnaError(f"{path}: not a tna checkpoint (no '{FORMAT}' marker); use one written "
                       f"by `tna train`")
    if state.get("version") != VERSION:
        raise TnaError(f"{path}: checkpoint version {state.get('version')!r}, this tna reads "
                       f"{VERSION}; train again with this tna")
    for key in ("model", "model_spec", "config"):
        if key not in state:
            raise TnaError(f"{path}: checkpoint lacks '{key}'; it is incomplete, train again")
    for name, tensor in state["model"].items():
        if torch.is_tensor(tensor) and tensor.is_floating_point() and \
                not torch.isfinite(tensor).all():
            raise TnaError(f"{path}: model weight '{name}' holds NaN or Inf; the run diverged, "
                           f"train again with a lower --lr")
    state["path"] = str(path)
    return state


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_model(path):
    """(model in eval mode, checkpoint dict) rebuilt from a checkpoint's spec and state."""
    from tna.models.snn import build_model
    from tna.models.spec import ModelSpec
    from tna.quant import BinaryConfig, TernaryConfig, binarize_, ternarize_

    state = load(path)
    try:
        spec = ModelSpec.from_dict(state["model_spec"])
    except TypeError as e:
        raise TnaError(f"{state['path']}: model_spec is malformed ({e}); train again") from None
    model = build_model(spec)
    comp = state.get("compression") or {}
    scales = tuple(comp["scales"]) if comp.get("scales") else None   # absent: ±1 (older runs)
    if comp.get("mode") == "ternary":
        ternarize_(model, TernaryConfig(delta=comp["delta"], scales=scales))
    elif comp.get("mode") == "binary":
        binarize_(model, BinaryConfig(scales=scales))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise TnaError(f"{state['path']}: weights do not fit the saved architecture "
                       f"({str(e).splitlines()[0][:120]}); the checkpoint is damaged") from None
    model.eval()
    return model, state


def data_config(state: dict):
    """The `tna.data.DataConfig` a checkpoint was trained with: its config's data keys."""
    import dataclasses

    from tna.config import from_dict
    from tna.data import DataConfig
    keys = {f.name for f in dataclasses.fields(DataConfig)}
    d = {k: v for k, v in state["config"].items() if k in keys}
    return from_dict(DataConfig, d, where=f"{state['path']}: config")
