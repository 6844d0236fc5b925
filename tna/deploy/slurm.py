"""`tna run … --executor slurm --shards N`: a parity run as N SLURM array tasks (`tna run …
--shard K/N`, tna.deploy.shards) and one job that merges them (`tna run --merge DIR`), with
plain sbatch (tna.slurm)."""
from __future__ import annotations

import dataclasses
import shlex
import time
from pathlib import Path

from tna import slurm
from tna.console import count, log
from tna.deploy.config import RunConfig
from tna.errors import TnaError


def submit(net_path, cfg: RunConfig, samples: int) -> None:
    import yaml
    slurm.sbatch()
    if cfg.shards > samples:
        raise TnaError(f"--shards {cfg.shards}: more shards than the {samples} samples")
    shard_dir = cfg.shard_dir or (str(Path(cfg.report).with_suffix("")) + "-shards"
                                  if cfg.report else None)
    if shard_dir is None:
        raise TnaError("--executor slurm: give --shard-dir DIR (or --report, next to which the "
                       "shards go)")
    folder = Path(shard_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    task = dataclasses.asdict(dataclasses.replace(cfg, executor="local", shards=1, shard=None,
                                                  shard_dir=str(folder), progress=False))
    for key in ("report", "plot", "save_output", "save_input", "input", "data_dir"):
        if task.get(key):
            task[key] = str(Path(task[key]).resolve())
    conf = folder / f"run-{stamp}.yaml"
    conf.write_text(yaml.safe_dump(task, sort_keys=False))
    tna, net = slurm.tna_command(), shlex.quote(str(Path(net_path).resolve()))
    q = shlex.quote(str(conf))
    flags = ["--job-name=tna-run-shards", slurm.array(cfg.shards, cfg.slurm),
             f"--output={folder}/shard_%A_%a.log"] + slurm.options(cfg.slurm, 2)
    body = (f"exec {tna} run {net} --config {q} --shard \"$SLURM_ARRAY_TASK_ID/{cfg.shards}\""
            f"\n")
    script = folder / f"shards-{stamp}.sh"
    try:
        shards = slurm.submit(script, flags, body)
    except BaseException:                 # nothing reached SLURM: leave nothing behind
        conf.unlink(missing_ok=True)
        script.unlink(missing_ok=True)
        raise
    flags = ["--job-name=tna-run-merge", f"--output={folder}/merge_%j.log"] + slurm.options(
        {k: v for k, v in cfg.slurm.items() if k in ("partition", "time", "account")}, 1, False)
    merge = slurm.submit(folder / f"merge-{stamp}.sh", flags,
                         f"exec {tna} run --merge {shlex.quote(str(folder))}\n", after=[shards])
    log(f"submitted {count(samples, 'sample')} in {cfg.shards} shards as job array {shards}, "
        f"and the merge as job {merge}; watch them with squeue -j {shards},{merge}; the "
        f"report: {cfg.report or 'see ' + str(folder) + '/merge_*.log'}")
