"""Config dataclasses from dicts and YAML files: unknown keys and wrong types are errors.

Every stage has one frozen config dataclass (`TrainConfig`, `ExportConfig`, `RunConfig`).
Keys may be written with dashes (as CLI flags) or underscores.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path

from tna.errors import TnaError


def _allowed(tp) -> tuple:
    """The runtime types a field annotation admits, e.g. 'int | None' -> (int, NoneType)."""
    if isinstance(tp, str):
        tp = eval(tp, {"Path": Path}, {})   # our own annotations only, never user input
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        out = ()
        for arg in typing.get_args(tp):
            out += _allowed(arg)
        return out
    if tp is float:
        return (float, int)
    if tp is type(None):
        return (type(None),)
    return (origin or tp,)


def check_int(key: str, value, lo: int, hi: int | None = None, allow_none: bool = False):
    """The one wording of a whole-number check: 'key = value: must be a whole number ≥ lo'."""
    import numbers
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo or (
            hi is not None and value > hi):
        rng = f"in {lo}..{hi}" if hi is not None else f"≥ {lo}"
        raise TnaError(f"{key} = {value!r}: must be a whole number {rng}")


def from_dict(cls, d: dict, where: str = "config"):
    """Build `cls` from a plain dict, naming unknown keys and values of the wrong type."""
    if not isinstance(d, dict):
        raise TnaError(f"{where}: expected a mapping of keys to values, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in d.items():
        name = str(key).replace("-", "_")
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=1) or \
                [k for k in fields if k.split("_")[0] == name.split("_")[0]]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TnaError(f"{where}: unknown key {key!r}{hint}; known keys: "
                           f"{', '.join(sorted(fields))}")
        allowed = _allowed(fields[name].type)
        if isinstance(value, bool) and bool not in allowed:
            ok = False
        else:
            ok = isinstance(value, allowed)
        if not ok:
            names = " or ".join(sorted({a.__name__ for a in allowed}))
            raise TnaError(f"{where}: {key} = {value!r} should be {names}")
        kwargs[name] = value
    return cls(**kwargs)


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def _configs_dir(kind: str = ""):
    """The named configs (`--config fmnist-cpu`): package data in tna/configs/ (bench presets
    in tna/configs/bench/), so a wheel carries them; a Path unless tna is imported from a zip."""
    from importlib.resources import files

    folder = files("tna") / "configs"
    return folder / kind if kind else folder


def presets(kind: str = "") -> list[str]:
    """The names of the shipped configs: training configs, or `kind` 'bench' for benches."""
    return sorted(p.name[:-len(".yaml")] for p in _configs_dir(kind).iterdir()
                  if p.name.endswith(".yaml") and p.is_file())


def resolve_config(name_or_path, kind: str = "") -> Path:
    """A YAML path as given, or the shipped config of that name (`fmnist-cpu`); `kind`
    'bench' looks in tna/configs/bench/."""
    path = Path(name_or_path)
    if not path.is_file() and path.suffix == "" and len(path.parts) == 1:
        named = _configs_dir(kind) / f"{path.name}.yaml"
        if named.is_file():
            return named
        raise TnaError(f"--config {name_or_path}: no such file and no config of that name; "
                       f"named configs: {', '.join(presets(kind))}")
    return path


def load_yaml(path, kind: str = "") -> dict:
    """Read a YAML mapping (a path or a named config of `kind`); TnaError on a missing file
    or bad YAML."""
    import yaml

    path = resolve_config(path, kind)
    if not path.is_file():
        raise TnaError(f"{path}: config file not found; pass an existing YAML file to --config")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        at = f" at line {line + 1}" if line is not None else ""
        raise TnaError(f"{path}: not valid YAML{at}; fix the file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TnaError(f"{path}: expected a mapping of keys to values at the top level")
    return data
