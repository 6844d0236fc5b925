"""Runs a bench's cells, `jobs` at a time, then writes its report."""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path

from tna import cluster
from tna.atomic import write_text
from tna.console import count, duration
from tna.console import log as _log
from tna.bench.config import BenchConfig
from tna.bench.lock import CellBusy
from tna.bench.grid import (cells, epoch_seconds_median, has_teacher, load_record, log_tail,
                            read_metrics, run_cell, teacher_cell, train_config)
from tna.bench.report import write_report
from tna.errors import TnaError


def bench(cfg: BenchConfig, cell: str | None = None, report_only: bool = False) -> Path:
    """Run the grid's pending cells (`cfg.executor`: here, or as SLURM job arrays) and write
    the report. `cell` (a name or an index into the grid) runs that one cell alone, without
    the report: what a scheduler's array task runs. `report_only` writes the report of the
    cells finished so far and trains nothing."""
    for c in cells(cfg):   # a bad training key fails here, in one line, before the folder
        train_config(c, cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    _check_same_grid(cfg, out)
    todo = cells(cfg)
    if cfg.reuse:
        _reuse(cfg, out, todo)
    if report_only:
        return _report(out, cfg)
    if cell is not None:
        return _one_cell(cfg, todo, cell)
    records = {c.name: r for c in todo if (r := load_record(c, out)) is not None}
    pending = [c for c in todo if c.name not in records]
    if cfg.executor == "slurm":
        from tna.bench.slurm import submit
        return submit(cfg, todo, pending)
    _log(f"bench {out}: {count(len(todo), 'cell')}, {len(records)} finished, {len(pending)} to run"
         f" ({cfg.jobs} at a time)")
    failed, busy = _run_all(pending, cfg, records)
    _report(out, cfg)
    if failed:
        raise TnaError(f"{len(failed)} of {len(todo)} cells failed ({', '.join(failed)}); see "
                       f"their log.txt under {out}, fix the cause and run the bench again: "
                       f"finished cells are kept")
    if busy:
        _log(f"{count(len(busy), 'cell')} {'is' if len(busy) == 1 else 'are'} being run by "
             f"other processes or wait for such a teacher ({', '.join(busy)}): run the bench "
             f"again when they finish for the full report")
    return out


def _report(out: Path, cfg: BenchConfig) -> Path:
    done = finished_records(out)      # this grid's cells and any other grid's in the folder
    if done:
        for path in write_report(done, out, cfg.note):
            _log(f"wrote {path}")
    else:
        _log(f"bench {out}: no finished cell yet, so no report")
    return out


def pick(todo: list, cell: str):
    """The grid's cell named `cell`, or at index `cell` (0-based, grid order)."""
    by_name = {c.name: c for c in todo}
    if cell in by_name:
        return by_name[cell]
    if str(cell).isdigit() and int(cell) < len(todo):
        return todo[int(cell)]
    raise TnaError(f"--cell {cell}: not a cell of this grid; give a name (e.g. {todo[0].name}) "
                   f"or an index 0..{len(todo) - 1}")


def _one_cell(cfg: BenchConfig, todo: list, name: str) -> Path:
    c = pick(todo, name)
    out = Path(cfg.out)
    if load_record(c, out) is not None:
        _log(f"cell {c.name} is finished ({out / c.name / 'cell.json'})")
        return out
    _log(f"  run {c.name}")
    t0 = time.time()
    r = run_cell(c, cfg, _threads(cfg))      # CellBusy (one line) when another runs it
    _log(f"  done {c.name}: PyTorch {r['torch_test_acc']:.2f}%, deployed "
         f"{r['deployed_acc']:.2f}% ({'exact' if r['parity'] else 'NOT exact'}), "
         f"{duration(time.time() - t0)}")
    return out


def _reuse(cfg: BenchConfig, out: Path, todo: list) -> None:
    """Copy the finished cells of `cfg.reuse` (another bench folder) that this grid holds and
    has not finished, as they are (cell.json, marked reused_from, and the run's small files):
    only from a folder whose training settings (bench.json: preset, train, teacher, deploy
    limit) are this grid's, so that the cells are the ones this grid would train."""
    import shutil
    src = Path(cfg.reuse)
    try:
        theirs = json.loads((src / "bench.json").read_text())
    except (OSError, ValueError):
        raise TnaError(f"reuse = {cfg.reuse}: no bench folder there (no bench.json)") from None
    ours = json.loads((out / "bench.json").read_text())
    diff = sorted(k for k in set(ours) | set(theirs)
                  if k != "variants" and ours.get(k) != theirs.get(k))
    if diff:
        raise TnaError(f"reuse = {cfg.reuse}: its cells were trained with other settings "
                       f"({', '.join(diff)}); reuse only a bench of the same preset and train keys")
    for c in todo:
        cell = src / c.name / "cell.json"
        if not cell.is_file() or (out / c.name / "cell.json").exists():
            continue
        (out / c.name).mkdir(parents=True, exist_ok=True)
        for f in src.joinpath(c.name).iterdir():
            if f.is_file() and f.name != "cell.json":
                shutil.copy2(f, out / c.name / f.name)
        record = json.loads(cell.read_text())
        record["reused_from"] = str(src)
        write_text(out / c.name / "cell.json", json.dumps(record, indent=2) + "\n")
        _log(f"  reused {c.name} from {src}")


def finished_records(out: Path) -> list:
    """Every finished cell in the bench folder: one folder may hold several grids of the same
    training settings (fmnist-kd-cpu adds KD cells to fmnist-cpu's)."""
    records = []
    for p in sorted(out.glob("*/cell.json")):
        record = json.loads(p.read_text())
        if record.get("epoch_seconds_median") is None:    # cells recorded before the field
            # (a reused cell holds its run's files beside cell.json)
            record["epoch_seconds_median"] = epoch_seconds_median(
                read_metrics(p.parent / "run") or read_metrics(p.parent))
        records.append(record)
    return records


def _check_same_grid(cfg: BenchConfig, out: Path) -> None:
    """A bench folder belongs to one grid: resuming with other training settings would mix
    incomparable cells in one table."""
    import dataclasses
    keep = {k: v for k, v in dataclasses.asdict(cfg).items()
            if k not in ("jobs", "progress", "out", "methods", "weights", "seeds", "alphas",
                         "note", "variants", "reuse", "force", "executor", "slurm")}
    # (cell.json records a variant's options)
    path = out / "bench.json"
    if not path.exists():
        # created exclusively: of two processes starting on one folder, one writes it and the
        # other compares with it
        tmp = out / f".bench.json.{cluster.host_tag()}.{os.getpid()}"
        tmp.write_text(json.dumps(keep, indent=2) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    old = json.loads(path.read_text())
    if old != keep:
        diff = sorted(k for k in set(old) | set(keep) if old.get(k) != keep.get(k))
        raise TnaError(f"{out} holds a bench with other settings ({', '.join(diff)}); "
                       f"choose another --out or delete the folder")


def _threads(cfg: BenchConfig) -> int:
    """Torch threads per cell: the cores shared out between the cells that run at once."""
    return max(1, cluster.allocated_cpus() // cfg.jobs)   # the allocation, not the node


def _run_all(pending, cfg: BenchConfig, records: dict) -> tuple[list, list]:
    """Run `pending` here; (failed, busy): cells that failed, and cells another process runs
    (their lock is held) or whose teacher it runs."""
    failed, busy = [], []
    ready = lambda c: (not has_teacher(c.train_method)   # noqa: E731 - kd cells wait for their teacher
                       or teacher_cell(c, cfg).name in records)

    def blocked(c):
        t = teacher_cell(c, cfg).name
        (busy if t in busy else failed).append(
            c.name if t in busy else f"{c.name} (its teacher {t} failed)")

    if cfg.jobs == 1:
        for c in pending:
            if not ready(c):
                blocked(c)
                continue
            _one(c, cfg, records, failed, lambda c=c: run_cell(c, cfg, _threads(cfg)),
                 busy=busy)
        return failed, busy
    with ProcessPoolExecutor(cfg.jobs, mp_context=get_context("spawn")) as pool:
        running, waiting = {}, list(pending)
        while waiting or running:
            for c in [c for c in waiting if ready(c)][:cfg.jobs - len(running)]:
                waiting.remove(c)
                running[pool.submit(run_cell, c, cfg, _threads(cfg))] = (c, time.time())
                _log(f"  start {c.name}")
            if not running:      # what is left waits for teachers that failed
                for c in waiting:
                    blocked(c)
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                c, t0 = running.pop(fut)
                _one(c, cfg, records, failed, fut.result, t0, busy=busy)
    return failed, busy


def _one(c, cfg, records, failed, get, t0=None, busy=None) -> None:
    t0 = t0 or time.time()
    if cfg.jobs == 1:
        _log(f"  run {c.name}")
    try:
        r = get()
    except KeyboardInterrupt:
        raise
    except CellBusy as e:
        _log(f"  skip {c.name}: {str(e).split('; ')[0].removeprefix(f'cell {c.name} ')}")
        busy.append(c.name)
        return
    except Exception as e:   # noqa: BLE001 - one failed cell must not stop the others
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        _log(f"  FAILED {c.name}: {first} | {log_tail(c, cfg.out)}")
        failed.append(c.name)
        return
    records[c.name] = r
    _log(f"  done {c.name}: PyTorch {r['torch_test_acc']:.2f}%, deployed "
         f"{r['deployed_acc']:.2f}% ({'exact' if r['parity'] else 'NOT exact'}), "
         f"{duration(time.time() - t0)}")


