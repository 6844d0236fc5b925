"""tna on a real one-node SLURM (tests/slurm/cluster.py): a digits bench as job arrays equals the
local bench, a cancelled task resumes when submitted again, a double submission trains no cell
twice, and a parity run in 3 shards merges to the single run's report.

Marked `slurm`: off in the default run, `make test-slurm` runs them (after installing the
daemons with apt when they are missing); they skip with the reason where the daemons cannot
start (no root, no SLURM)."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests_slurm_cluster import Cluster, missing   # the module beside this (conftest)

pytestmark = pytest.mark.slurm
TNA = str(Path(sys.executable).with_name("tna"))
GRID = dict(preset="digits-quick", train={"epochs": 2, "ternary_after": 1},
            methods=["single", "kd"], weights=["fp"], seeds=[0])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    why = missing()
    if why:
        pytest.skip(why)
    c = Cluster(tmp_path_factory.mktemp("slurm")).start()
    yield c
    c.stop()


def tna(cluster, *args, check=True, cwd=None) -> subprocess.CompletedProcess:
    p = subprocess.run([TNA, *args], env=cluster.env, capture_output=True, text=True,
                       timeout=600, cwd=cwd)
    if check and p.returncode != 0:
        raise AssertionError(f"tna {' '.join(args)}: {p.stderr[-2000:]}")
    return p


def rows(folder: Path) -> dict:
    keep = ("deployed_acc", "torch_test_acc", "reference_acc", "parity", "deployed_acc_by_t")
    with open(folder / "results.csv") as f:
        return {r["cell"]: {k: r[k] for k in keep} for r in csv.DictReader(f)}


def grid_file(tmp_path, **kw) -> str:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({**GRID, **kw}))
    return str(path)


def idle(cluster, timeout=420):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if not cluster.run("squeue", "-h", check=False).strip():
            return
        time.sleep(1)
    raise TimeoutError(cluster.run("squeue"))


def test_a_digits_bench_as_job_arrays_equals_the_local_bench(cluster, tmp_path):
    grid = grid_file(tmp_path)
    out = tmp_path / "slurm-bench"
    p = tna(cluster, "bench", "--config", grid, "--out", str(out), "--executor", "slurm",
            "--cpus", "2")
    assert "as job array" in p.stderr and "wave 2, after the teachers" in p.stderr
    shown = cluster.run("scontrol", "show", "job")        # the jobs as SLURM holds them
    (tmp_path / "scontrol.txt").write_text(shown)
    assert "JobName=tna-bench-w1" in shown and "Dependency=afterany" in shown
    idle(cluster)
    local = tmp_path / "local-bench"
    tna(cluster, "bench", "--config", grid, "--out", str(local))
    assert rows(out) == rows(local) and len(rows(out)) == 2
    for cell in ("single-fp-s0", "kd-fp-s0"):
        r = json.loads((out / cell / "cell.json").read_text())
        assert r["job_id"] and "array_index" in r and r["host"]
        assert not (out / cell / "lock.json").exists()


def test_a_cancelled_task_resumes_when_submitted_again(cluster, tmp_path):
    grid = grid_file(tmp_path, methods=["single"], train={"epochs": 12, "ternary_after": 6})
    out = tmp_path / "b"
    tna(cluster, "bench", "--config", grid, "--out", str(out), "--executor", "slurm",
        "--cpus", "2")
    ckpt = out / "single-fp-s0" / "run" / "checkpoint.pt"
    t0 = time.time()
    while not ckpt.exists() and time.time() - t0 < 300:
        time.sleep(0.2)
    assert ckpt.exists()
    cluster.run("scancel", "--name=tna-bench-w1")
    cluster.run("scancel", "--name=tna-bench-report")
    idle(cluster)
    assert not (out / "single-fp-s0" / "cell.json").exists()
    p = tna(cluster, "bench", "--config", grid, "--out", str(out), "--executor", "slurm",
            "--cpus", "2")
    assert "submitted 1 cell" in p.stderr
    idle(cluster)
    log = (out / "single-fp-s0" / "log.txt").read_text()
    assert "resuming" in log and (out / "single-fp-s0" / "cell.json").exists()
    local = tmp_path / "local"
    tna(cluster, "bench", "--config", grid, "--out", str(local))
    assert rows(out) == rows(local)                     # resumed bit for bit


def test_two_submissions_at_once_train_no_cell_twice(cluster, tmp_path):
    grid = grid_file(tmp_path, methods=["single", "tna"], weights=["fp"])
    out = tmp_path / "b"
    cmd = [TNA, "bench", "--config", grid, "--out", str(out), "--executor", "slurm",
           "--cpus", "1"]
    procs = [subprocess.Popen(cmd, env=cluster.env, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    idle(cluster)
    logs = "".join(p.read_text() for p in out.glob("slurm/*/wave1_*.log"))
    for cell in ("single-fp-s0", "tna-fp-a0.0001-s0"):
        assert (out / cell / "cell.json").exists()
        assert (out / cell / "log.txt").read_text().count("data: ") == 1     # trained once
        lines = (out / cell / "run" / "metrics.jsonl").read_text().splitlines()
        assert len(lines) == 2
    assert logs.count("is being run by") + logs.count("is finished") >= 2, logs


def test_a_parity_run_in_three_shards_equals_the_single_run(cluster, tmp_path, digits_net):
    net = digits_net
    sharded, single = tmp_path / "sharded", tmp_path / "single"
    tna(cluster, "run", str(net), "--backend", "emulator", "--executor", "slurm",
        "--shards", "3", "--report", str(sharded / "parity.json"))
    idle(cluster)
    tna(cluster, "run", str(net), "--backend", "emulator", "--report",
        str(single / "parity.json"))
    a, b = (json.loads((f / "parity.json").read_text()) for f in (single, sharded))
    for d in (a, b):
        d.pop("seconds")
        d["plots"] = [Path(p).name for p in d["plots"]]
    assert a == b and a["samples"] == 359
    for png in ("parity_confusion.png", "parity_raster.png"):
        assert (single / png).read_bytes() == (sharded / png).read_bytes()
    assert len(list((sharded / "parity-shards").glob("shard-*-of-3.npz"))) == 3
