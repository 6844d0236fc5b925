"""The wheel is the package: built from the source tree and installed (not editable) into a fresh
venv without the repository on the path, `tna train --config digits-quick` still finds its
named config and trains.

A fresh venv cannot download torch and lava (2.7 GB), so it borrows this interpreter's
site-packages through a `.pth` file of plain path lines: `site` adds such a directory to
sys.path without processing the .pth files inside it, so the editable install's finder (which
would import tna from the repository) stays off. The test checks that too.
"""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from tna.config import presets

ROOT = Path(__file__).resolve().parents[1]
# What the wheel is built from: the build writes build/ and *.egg-info next to its source, so it
# builds a copy in tmp_path rather than the source tree.
SOURCES = ["pyproject.toml", "README.md", "tna"]


def _can_build_wheels() -> bool:
    """setuptools < 70.1 needs the `wheel` package for bdist_wheel (the test extra installs it)."""
    import importlib.util

    from setuptools import __version__
    major, minor = (int(x) for x in __version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


def _run(cmd, cwd, timeout_s=300) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout_s)
    assert p.returncode == 0, f"{' '.join(map(str, cmd))} exited {p.returncode}:\n" \
        f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p.stdout


@pytest.mark.skipif(not _can_build_wheels(), reason="building a wheel offline needs the `wheel` "
                    "package with setuptools < 70.1: pip install -e '.[test]'")
def test_wheel_installs_and_trains_from_a_named_config(tmp_path):
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    if not base.is_file():
        pytest.skip(f"no base interpreter at {base} to create a fresh venv with")

    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "--no-index", src, "-w", tmp_path / "dist"], cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("tna-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in ("", "bench"):
        for name in presets(kind):
            path = str(PurePosixPath("tna/configs", kind, f"{name}.yaml"))
            assert path in names, f"{path} is not in the wheel: pyproject.toml's package-data"

    venv = tmp_path / "venv"
    _run([base, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp_path).strip())
    # torch, lava and the rest from this interpreter's site-packages: plain path lines only
    ours = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "tna-test-deps.pth").write_text("".join(f"{p}\n" for p in ours))
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
          "--no-index", wheel], cwd=tmp_path)

    where = json.loads(_run([python, "-c", "import json, sys, tna; from tna.config import presets; "
                             "print(json.dumps([tna.__file__, sys.path, presets(), "
                             "presets('bench')]))"], cwd=tmp_path))
    assert Path(where[0]).is_relative_to(site), f"tna imported from {where[0]}, not the wheel"
    assert not any((tmp_path / p).resolve() == ROOT for p in where[1]), where[1]   # '' is cwd
    assert where[2:] == [presets(), presets("bench")]

    out = tmp_path / "out"
    _run([venv / "bin" / "tna", "train", "--config", "digits-quick", "--epochs", "1",
          "--ternary-after", "0", "--out", out], cwd=tmp_path)
    result = json.loads((out / "result.json").read_text())
    assert result["epochs"] == 1 and result["test_acc"] > 20     # ten classes: chance is 10%
    assert (out / "best.pt").is_file()
