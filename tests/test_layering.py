"""tna's packages depend downward only, and Lava is imported in one package.

PACKAGE_TIERS is the intended picture, bottom first: a module may import modules of its own package
or of a lower layer, never one of its own layer or above (so no two packages form a cycle).
Imports inside functions count: they are dependencies too, only deferred.
"""
import ast
from pathlib import Path

import pytest

import tna

PACKAGE_TIERS = [
    {"errors", "cluster"},                                     # one-line errors; host, job
    {"console", "atomic", "config", "files", "spikes"},      # plain helpers
    {"slurm"},                                                 # sbatch scripts and jobs
    {"neurons"},                                               # neuron models, Loihi units
    {"netx", "data", "metrics"},                               # formats, data sets, accuracy
    {"quant"},
    {"models"},                                                # slayer CUBA blocks
    {"checkpoint", "reference"},
    {"sim"},                                                   # the emulator
    {"estimate"},                                              # Loihi 2 fit and cost
    {"lava"},                                                  # every Lava import
    {"train"},                                                 # the pipeline stages; export
    {"export", "deploy"},                                      # reads a run's TrainConfig
    {"nir"},
    {"bench", "demo"},
    {"cli"},
]
ROOT = Path(tna.__file__).parent
# lava-nc and lava-dl's netx (the simulator, its processes, netx's loader) live in tna/lava;
# lava-dl's slayer is the PyTorch training library: tna/models imports it (import_slayer)
LAVA_HOMES = {"lava": "lava", "lava.lib.dl.slayer": "models"}


def unit(path: Path) -> str:
    """The package (tna/<unit>/...) or module (tna/<unit>.py) a file belongs to."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return parts[0]


def imports(path: Path) -> list[tuple[str, int]]:
    """(imported module, line) of every import in a file, function-level ones included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "tna":           # from tna import netx: the names are modules
                out += [(f"tna.{a.name}", node.lineno) for a in node.names]
            else:
                out += [(node.module, node.lineno)]
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
    return out


def upward(source_unit: str, target: str) -> bool:
    """Whether `source_unit` importing tna unit `target` goes against PACKAGE_TIERS."""
    rank = {u: i for i, layer in enumerate(PACKAGE_TIERS) for u in layer}
    return target != source_unit and rank[target] >= rank[source_unit]


def violations(files) -> list[str]:
    out = []
    units = {u for layer in PACKAGE_TIERS for u in layer}
    for path in files:
        src = unit(path)
        if src == "__init__":
            continue
        for name, line in imports(path):
            parts = name.split(".")
            if parts[0] == "tna" and len(parts) > 1 and parts[1] in units and \
                    upward(src, parts[1]):
                out.append(f"{path.relative_to(ROOT.parent)}:{line}: {src} imports {name}")
            if parts[0] == "lava":
                home = LAVA_HOMES["lava.lib.dl.slayer"] if name.startswith(
                    "lava.lib.dl.slayer") else LAVA_HOMES["lava"]
                if src != home:
                    out.append(f"{path.relative_to(ROOT.parent)}:{line}: {src} imports "
                               f"{name} (Lava belongs in tna/{home})")
    return out


def test_every_unit_has_a_layer():
    found = {unit(p) for p in ROOT.rglob("*.py")} - {"__init__"}
    assert found == {u for layer in PACKAGE_TIERS for u in layer}, found ^ {u for layer in PACKAGE_TIERS
                                                                     for u in layer}


def test_imports_point_downward_only():
    assert violations(sorted(ROOT.rglob("*.py"))) == []


@pytest.mark.parametrize("source, text", [
    ("netx.py", "from tna.deploy import run\n"),               # a format reaching a stage
    ("deploy/extra.py", "def f():\n    from tna.export import export\n"),     # same layer
    ("sim/extra.py", "import lava.magma.core\n"),              # Lava outside tna/lava
])
def test_the_check_catches_an_upward_import(tmp_path, monkeypatch, source, text):
    """The rule is real: an upward import added on purpose fails it."""
    fake = tmp_path / "tna"
    path = fake / source
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    monkeypatch.setattr(f"{__name__}.ROOT", fake)
    assert len(violations([path])) == 1
