"""Parity runs in shards: `tna run … --shard K/N --shard-dir DIR` runs block K of N (contiguous
samples, K = 0..N-1) and saves its raw per-sample results; `tna run --merge DIR` joins the N
blocks into the report, JSON and PNGs one run over all samples gives, bit for bit (counts,
first divergence, CI, confusion matrix; only the timings differ: summed over the shards).

A shard file holds, per backend, the aligned output spikes and voltage, the logits and every
layer's packed spikes, plus the labels and the inputs; its JSON sidecar holds the run's config,
the block and the net's SHA-256, which the merge checks.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from tna.atomic import atomic_path
from tna.deploy.backends import BackendOutput
from tna.deploy.config import RunConfig
from tna.errors import TnaError


def parse(shard: str) -> tuple[int, int]:
    """'K/N' -> (K, N), 0 <= K < N."""
    k, sep, n = str(shard).partition("/")
    if not sep or not k.strip().isdigit() or not n.strip().isdigit() or not \
            0 <= int(k) < int(n):
        raise TnaError(f"--shard {shard}: write K/N with 0 <= K < N, e.g. --shard 0/3")
    return int(k), int(n)


def block(samples: int, k: int, n: int) -> tuple[int, int]:
    """Samples [lo, hi) of shard k of n: contiguous blocks, so that the merge is a concat."""
    return k * samples // n, (k + 1) * samples // n


def _name(k: int, n: int) -> str:
    return f"shard-{k}-of-{n}"


def save(folder, k: int, n: int, lo: int, hi: int, total: int, net_path, cfg: RunConfig,
         outputs: dict, names: list, labels, inputs) -> Path:
    from tna.checkpoint import sha256
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"inputs": np.asarray(inputs)}
    if labels is not None:
        arrays["labels"] = np.asarray(labels)
    for name in names:
        o = outputs[name]
        arrays[f"{name}/spikes"], arrays[f"{name}/logits"] = o.spikes, o.logits
        if o.voltage is not None:
            arrays[f"{name}/voltage"] = o.voltage
        for i, p in o.layer_spikes.items():
            arrays[f"{name}/layer/{i}"] = p
    path = folder / f"{_name(k, n)}.npz"
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    side = {"net": str(net_path), "net_sha256": sha256(net_path), "shard": [k, n],
            "block": [lo, hi], "samples": total, "backends": names,
            "seconds": {name: outputs[name].seconds for name in names},
            "config": dataclasses.asdict(dataclasses.replace(cfg, shard=None, shard_dir=None))}
    with atomic_path(folder / f"{_name(k, n)}.json") as tmp:
        Path(tmp).write_text(json.dumps(side, indent=2) + "\n")
    return path


def load(folder) -> tuple:
    """(net path, RunConfig, backend names, {name: BackendOutput}, labels, inputs) of the N
    shards in `folder`, joined in sample order; TnaError when one is missing or they differ."""
    folder = Path(folder)
    sides = sorted(folder.glob("shard-*-of-*.json"))
    if not sides:
        raise TnaError(f"--merge {folder}: no shard-K-of-N.json there; run tna run --shard K/N "
                       f"--shard-dir {folder} first")
    meta = [json.loads(p.read_text()) for p in sides]
    n = meta[0]["shard"][1]
    got = sorted(m["shard"][0] for m in meta if m["shard"][1] == n)
    if got != list(range(n)) or len(meta) != n:
        missing = sorted(set(range(n)) - set(got))
        raise TnaError(f"--merge {folder}: shards {', '.join(map(str, missing)) or '?'} of {n} "
                       f"are missing (or shards of another count are there)")
    meta.sort(key=lambda m: m["shard"][0])
    first = meta[0]
    for m in meta[1:]:
        for key in ("net_sha256", "config", "samples", "backends"):
            if m[key] != first[key]:
                raise TnaError(f"--merge {folder}: shard {m['shard'][0]} differs from shard 0 "
                               f"in its {key}; run every shard with the same net and options")
    if [m["block"] for m in meta] != [list(block(first["samples"], k, n)) for k in range(n)]:
        raise TnaError(f"--merge {folder}: the shards' blocks do not tile the samples")
    data = [np.load(folder / f"{_name(m['shard'][0], n)}.npz", allow_pickle=False)
            for m in meta]
    names = first["backends"]
    outputs = {}
    for name in names:
        layers = sorted({int(k.rsplit("/", 1)[1]) for k in data[0].files
                         if k.startswith(f"{name}/layer/")})
        outputs[name] = BackendOutput(
            name, spikes=np.concatenate([d[f"{name}/spikes"] for d in data]),
            voltage=(np.concatenate([d[f"{name}/voltage"] for d in data])
                     if f"{name}/voltage" in data[0].files else None),
            logits=np.concatenate([d[f"{name}/logits"] for d in data]),
            seconds=sum(m["seconds"][name] for m in meta),
            layer_spikes={i: np.concatenate([d[f"{name}/layer/{i}"] for d in data])
                          for i in layers})
    labels = np.concatenate([d["labels"] for d in data]) if "labels" in data[0].files else None
    inputs = np.concatenate([d["inputs"] for d in data])
    cfg = RunConfig(**{**first["config"], "progress": False})
    return first["net"], cfg, names, outputs, labels, inputs
