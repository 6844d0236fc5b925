"""Files from elsewhere never run code: a source scan that keeps it so, plus behaviour checks.

The scan walks the syntax tree of every module under tna/ and benchmarks/: each `torch.load` passes
weights_only=True, each `np.load` allow_pickle=False, YAML is read with safe_load only, and
nothing calls pickle/marshal/shelve loaders. `eval` appears once, in tna/config.py, on our own
dataclass annotations. (The malicious-file cases themselves are in test_bad_inputs.py: a pickle
checkpoint, a torch zip checkpoint, a teacher checkpoint, an .npz and an .npy with object
arrays, and a YAML python tag, each with a marker file that must not appear.)
"""
import ast
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from tna import checkpoint as ckpt
from tna.errors import TnaError

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for d in ("tna", "benchmarks") for p in (ROOT / d).rglob("*.py"))
FORBIDDEN = {("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"),
             ("marshal", "load"), ("marshal", "loads"), ("shelve", "open"),
             ("yaml", "load"), ("yaml", "unsafe_load"), ("yaml", "full_load"),
             ("joblib", "load"), ("dill", "load"), ("dill", "loads")}
EVAL_ALLOWED = {("tna/config.py", "_allowed")}


def _calls(tree):
    """(call node, dotted name like 'torch.load', enclosing function name) for every call."""
    out = []

    def visit(node, func):
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                else func
            if isinstance(child, ast.Call):
                parts, f = [], child.func
                while isinstance(f, ast.Attribute):
                    parts.append(f.attr)
                    f = f.value
                parts.append(f.id if isinstance(f, ast.Name) else "?")   # ?: f(x).attr()
                out.append((child, ".".join(reversed(parts)), name))
            visit(child, name)
    visit(tree, None)
    return out


def _kw(call, name):
    for k in call.keywords:
        if k.arg == name and isinstance(k.value, ast.Constant):
            return k.value.value
    return "missing"


def test_sources_found():
    names = {p.relative_to(ROOT).as_posix() for p in SOURCES}
    assert {"tna/checkpoint.py", "tna/deploy/runner.py", "tna/data/datasets.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_loader_can_run_code(path):
    rel = path.relative_to(ROOT).as_posix()
    for call, name, func in _calls(ast.parse(path.read_text(), str(path))):
        where = f"{rel}:{call.lineno} {name}"
        if name == "torch.load":
            assert _kw(call, "weights_only") is True, f"{where} needs weights_only=True"
        elif name in ("np.load", "numpy.load"):
            assert _kw(call, "allow_pickle") is False, f"{where} needs allow_pickle=False"
        elif tuple(name.split(".")[-2:]) in FORBIDDEN:
            pytest.fail(f"{where} can run code from a file")
        elif name in ("eval", "exec", "compile", "__import__"):
            assert (rel, func) in EVAL_ALLOWED and name == "eval", f"{where} runs strings as code"


# The one deliberate unpickler: CIFAR's python batches are pickles; it builds only numpy arrays.
UNPICKLERS_ALLOWED = {("tna/data/cifar.py", "_CifarUnpickler")}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_unpickler_is_restricted(path):
    """A subclass of pickle.Unpickler is not a call, so the scan above cannot see it: each must
    be listed here and override find_class (the only way a pickle reaches code)."""
    where = path.relative_to(ROOT).as_posix()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef) and any(
                ast.unparse(b).endswith("Unpickler") for b in node.bases):
            assert (where, node.name) in UNPICKLERS_ALLOWED, f"{where}: {node.name}"
            assert any(isinstance(f, ast.FunctionDef) and f.name == "find_class"
                       for f in node.body), f"{where}: {node.name} must override find_class"


def test_scan_sees_unsafe_calls():
    tree = ast.parse("def f(p):\n    torch.load(p)\n    np.load(p, allow_pickle=True)\n"
                     "    pickle.loads(b)\n    eval(s)\n    m.to(d).eval()\n")
    found = {(name, func) for _, name, func in _calls(tree)}
    assert {("torch.load", "f"), ("np.load", "f"), ("pickle.loads", "f"), ("eval", "f"),
            ("?.eval", "f")} <= found
    calls = {name: call for call, name, _ in _calls(tree)}
    assert _kw(calls["torch.load"], "weights_only") == "missing"
    assert _kw(calls["np.load"], "allow_pickle") is True


def test_checkpoint_of_plain_tensors_loads(tmp_path, digits_run):
    """The safe loader still reads real checkpoints (the refusals are in the corpus)."""
    run_dir, _ = digits_run
    state = ckpt.load(run_dir / "best.pt")
    assert state["epoch"] >= 1 and state["format"] == ckpt.FORMAT


def test_pickled_checkpoint_with_allowed_types_but_wrong_content(tmp_path):
    """weights_only accepts plain containers: the format marker then rejects foreign dicts."""
    path = tmp_path / "plain.pt"
    torch.save({"format": "tna-checkpoint", "version": 1, "model": {"w": torch.ones(2)},
                "model_spec": {}, "config": {}}, path)
    assert ckpt.load(path)["model"]["w"].tolist() == [1.0, 1.0]
    path.write_bytes(pickle.dumps([1, 2, 3]))         # legacy (non-zip) pickle of a list
    with pytest.raises(TnaError, match="not a readable tna checkpoint|refused to load|"
                                       "not a tna checkpoint"):
        ckpt.load(path)


def test_npz_data_never_unpickles(tmp_path):
    from tna.data import load_dataset

    class Boom:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "PWNED",))

    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((4, 2), np.uint8), y=np.array([Boom()] * 4, dtype=object))
    with pytest.raises(TnaError, match="'y' cannot be loaded without pickle"):
        load_dataset(f"npz:{path}")
    assert not (tmp_path / "PWNED").exists()
