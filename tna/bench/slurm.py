"""`tna bench --executor slurm`: the pending cells as SLURM job arrays (tna.slurm: plain sbatch).

One submission writes `<out>/slurm/<stamp>/`: `bench.yaml` (the grid as resolved here, so that
every task runs exactly it), one sbatch script per wave and the tasks' logs. Waves:
  1. every pending cell without a teacher, one array (`tna bench --cell NAME` per task);
  2. the kd cells, one array that starts when wave 1 has ended (afterany: a cell whose teacher
     failed says so in one line);
  3. one job that writes the report after both (`tna bench --report-only`).
Each task takes its cell's lock (tna.bench.lock): a cell submitted twice is trained once, the
second task stops at once with one line. Submitting again submits only the cells with neither
a cell.json nor a live lock. Tasks are submitted with --requeue: a preempted task is requeued
by SLURM and resumes from its checkpoint.
"""
from __future__ import annotations

import dataclasses
import shlex
import shutil
import time
from pathlib import Path

from tna import slurm
from tna.bench.config import BenchConfig
from tna.bench.grid import has_teacher
from tna.bench.lock import holder, stale
from tna.console import count, log


def _live_lock(folder: Path) -> bool:
    h = holder(folder)
    return h is not None and stale(h, folder / "lock.json") is None


def submit(cfg: BenchConfig, todo: list, pending: list) -> Path:
    """Submit `pending` (cells without cell.json) as SLURM arrays, and the report job."""
    import yaml
    slurm.sbatch()                    # no sbatch: one line before anything is written
    out = Path(cfg.out)
    cells = [c for c in pending if not _live_lock(out / c.name)]
    running = len(pending) - len(cells)
    if not cells:
        log(f"bench {out}: nothing to submit ({count(len(todo) - len(pending), 'cell')} "
            f"finished, {running} running)")
        return out
    folder = (out / "slurm" / time.strftime("%Y%m%d-%H%M%S")).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    grid = dataclasses.asdict(dataclasses.replace(cfg, executor="local", force=False))
    grid["out"] = str(out.resolve())
    if grid.get("reuse"):
        grid["reuse"] = str(Path(grid["reuse"]).resolve())
    (folder / "bench.yaml").write_text(yaml.safe_dump(grid, sort_keys=False))
    tna, conf = slurm.tna_command(), shlex.quote(str(folder / "bench.yaml"))
    ids: list = []
    try:
        _waves(cfg, cells, folder, tna, conf, ids, running)
    except BaseException:
        if not ids:                       # nothing reached SLURM: leave no submission folder
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return out


def _waves(cfg: BenchConfig, cells: list, folder: Path, tna: str, conf: str, ids: list,
           running: int) -> None:
    waves = [[c for c in cells if not has_teacher(c.train_method)],
             [c for c in cells if has_teacher(c.train_method)]]
    for k, wave in enumerate(waves, 1):
        if not wave:
            continue
        names = " ".join(shlex.quote(c.name) for c in wave)
        flags = [f"--job-name=tna-bench-w{k}", slurm.array(len(wave), cfg.slurm),
                 f"--output={folder}/wave{k}_%A_%a.log"] + slurm.options(cfg.slurm, 2)
        body = (f"cells=({names})\n"
                f"exec {tna} bench --config {conf} --cell \"${{cells[$SLURM_ARRAY_TASK_ID]}}\"\n")
        ids.append(slurm.submit(folder / f"wave{k}.sh", flags, body, after=ids[-1:]))
        log(f"submitted {count(len(wave), 'cell')} as job array {ids[-1]} (wave {k}"
            + (", after the teachers" if k == 2 else "") + ")")
    flags = ["--job-name=tna-bench-report", f"--output={folder}/report_%j.log"] + \
        slurm.options({k: v for k, v in cfg.slurm.items() if k in ("partition", "time",
                                                                     "account")}, 1, False)
    report = slurm.submit(folder / "report.sh", flags,
                          f"exec {tna} bench --config {conf} --report-only\n", after=ids)
    log(f"submitted the report as job {report}, after {', '.join(ids)}; watch them with "
        f"squeue -j {','.join(ids + [report])}; logs in {folder}"
        + (f" ({running} cells already running elsewhere)" if running else ""))
