"""Data-parallel training in several processes: `torchrun -m tna.cli train`, `tna train --nproc`.

One run, N processes (torchrun's workers; gloo on CPU, nccl with --device cuda, one GPU each):

* `--batch-size` is the **global** batch. Every process builds the same keyed batch as a single
  process would (tna.data.pipeline: order, crops, flips and rate spikes keyed by seed, epoch and
  batch) and keeps its contiguous part of it (`shard_slice`), so the union over processes is
  exactly the single-process batch and the learning rate needs no scaling.
* Each process weights its mean loss by its share of the global batch (n_rank / n) and the
  gradients of base and twin are summed over processes (`all_reduce_grads`, one all-reduce per
  step): the single-process mean gradient, up to float summation order. This is DDP's
  all-reduce written out: DDP averages equal parts, but the last global batch may split
  unevenly, even into an empty part, which a DDP process cannot step on. Base and twin share
  one flat all-reduce; the frozen kd teacher has no gradients and takes no part.
* Validation and the final test are split the same way; their counts and sums are all-reduced,
  so accuracies equal the single-process ones exactly.
* Dropout: each process draws its own masks from a torch seed keyed by (seed, epoch, rank), set
  at every epoch start, so `--resume` with the same process count repeats a run bit for bit.
  A single process keeps its one saved RNG stream (unchanged), so runs with dropout differ
  between 1 and N processes by their masks.
* Only rank 0 prints and writes the run folder; the other processes say nothing, errors
  included: rank 0 hits the same error and prints its one line.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import logging
import os
import sys
import time
from dataclasses import dataclass

from tna.errors import TnaError

# Collectives wait this long for a slow process before failing the run.
TIMEOUT = datetime.timedelta(hours=1)
# How long a process other than rank 0 waits, after a TnaError, for rank 0 (which meets the same
# error) to print it and end the job; only an error of its own is still printed after that.
ERROR_GRACE_S = 5.0
# Seconds between torchrun's checks of its workers (its default, 5 s, delays every exit).
MONITOR_INTERVAL_S = 0.2
_STREAM_DROPOUT = 3     # keyed-randomness stream; tna.data.pipeline uses 0-2
# The tensors of the latest collectives, held until the process group is gone. gloo's worker
# thread drops its reference to a finished all-reduce's tensor a moment after `all_reduce`
# returns; if that is the last one it needs the GIL, which destroy_process_group holds while it
# joins that thread: a deadlock at the end of a run (torch 2.3) that these references prevent.
_RECENT = collections.deque(maxlen=2)
_OWN_GROUP: list = []       # [True] while the process group `setup` created exists


@dataclass(frozen=True)
class World:
    """This process's place in the run: rank `rank` of `size` (torchrun's RANK, WORLD_SIZE)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0       # rank on this machine: the GPU it uses

    @property
    def main(self) -> bool:
        """The process that prints and writes the run folder."""
        return self.rank == 0

    @property
    def shard(self) -> tuple:
        """(rank, size), as `BatchLoader.batches(shard=...)` takes it."""
        return (self.rank, self.size)


def env_world() -> World:
    """The World torchrun describes in the environment (a lone process: World())."""
    try:
        return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                     int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError:
        raise TnaError("RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers (torchrun sets "
                       "them); unset them to train in one process") from None


def is_main() -> bool:
    """True unless this is a process other than rank 0 of a distributed run."""
    return env_world().main


def setup(device: str) -> World:
    """Join the run torchrun started (no-op for a lone process); returns this process's World."""
    world = env_world()
    if world.size == 1:
        return world
    import torch
    import torch.distributed as dist
    if device == "cuda":
        if not torch.cuda.is_available():
            raise TnaError("--device cuda: no CUDA device is visible, so nccl cannot run; use "
                           "--device cpu (gloo)")
        local = int(os.environ.get("LOCAL_WORLD_SIZE", world.size))
        if torch.cuda.device_count() < local:
            raise TnaError(f"{local} processes on this machine need one GPU each, "
                           f"{torch.cuda.device_count()} are visible; use --nproc "
                           f"{torch.cuda.device_count()}")
        if not dist.is_nccl_available():
            raise TnaError("--device cuda: this torch has no NCCL; use --device cpu (gloo)")
        torch.cuda.set_device(world.local_rank)
    _die_with_parent()
    if not dist.is_initialized():      # else: a script's own group, which it will destroy
        dist.init_process_group("nccl" if device == "cuda" else "gloo", timeout=TIMEOUT)
        _OWN_GROUP.append(True)
    return world


def teardown(world: World) -> None:
    """Leave the process group `setup` joined (destroying it if `setup` created it)."""
    if _OWN_GROUP:
        import torch.distributed as dist
        dist.destroy_process_group()
        _OWN_GROUP.clear()
    _RECENT.clear()


def torch_device(device: str, world: World):
    """The torch device of this process: its own GPU (`cuda:LOCAL_RANK`) or the CPU."""
    import torch
    if device == "cuda" and world.size > 1:
        return torch.device("cuda", world.local_rank)
    return torch.device(device)


def check_sizes(world: World, batch_size: int, train_samples: int) -> None:
    """Every process needs a part of the first global batch (of every batch but the last)."""
    if world.size == 1:
        return
    if batch_size < world.size:
        raise TnaError(f"--batch-size {batch_size} is the global batch and must be at least the "
                       f"number of processes ({world.size})")
    if train_samples < world.size:
        raise TnaError(f"{train_samples} training samples cannot be split over {world.size} "
                       f"processes; train on more or with fewer processes")


def dropout_seed(seed: int, epoch: int, world: World) -> int:
    """The torch seed of `world.rank`'s dropout masks in `epoch` (keyed, see module doc)."""
    from tna.data.pipeline import keyed_generator
    return keyed_generator(seed, _STREAM_DROPOUT, epoch, world.rank).initial_seed()


def all_reduce_grads(params, extra: float = 0.0) -> float:
    """Sum the gradients of `params` over all processes, in place; also sums `extra`.

    One flat all-reduce per step. A parameter without a gradient (a process with an empty part
    of the batch) adds zeros. Returns the sum of `extra` (the weighted loss: the global one)."""
    import torch
    import torch.distributed as dist
    params = list(params)
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                      for p in params]
                     + [torch.tensor([extra], dtype=params[0].dtype, device=params[0].device)])
    dist.all_reduce(flat)
    _RECENT.append(flat)
    offset = 0
    for p in params:
        p.grad = flat[offset:offset + p.numel()].view_as(p)
        offset += p.numel()
    return float(flat[-1])


def all_reduce_sums(values: list, world: World, device) -> list:
    """Element-wise sums of `values` (floats) over all processes, in float64."""
    if world.size == 1:
        return list(values)
    import torch
    import torch.distributed as dist
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    _RECENT.append(t)
    return t.tolist()


def barrier(world: World) -> None:
    if world.size > 1:
        import torch.distributed as dist
        dist.barrier()


def _die_with_parent() -> None:
    """Under torchrun, end this worker (SIGTERM) if its launcher dies, even by kill -9; torchrun
    starts workers in sessions of their own, where no terminal signal would reach them."""
    if "TORCHELASTIC_RUN_ID" not in os.environ or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


# --------------------------------------------------------------------------- the processes
@contextlib.contextmanager
def quiet_worker(debug: bool = False):
    """Around a worker's whole command: processes other than rank 0 exit without a word on
    Ctrl-C or a TnaError (rank 0 reports it), unless `debug`."""
    world = env_world()
    if world.main or debug:
        yield
        return
    # SIGINT (torchrun passes Ctrl-C on) ends this process at once, even inside a collective:
    # it writes no files, and rank 0 says "interrupted".
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        yield
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except TnaError as e:
        # Rank 0 meets the same error and prints it; torchrun then ends this process. Exiting at
        # once could make torchrun end rank 0 before it prints.
        time.sleep(ERROR_GRACE_S)
        print(f"error (process {world.rank}): {e}", file=sys.stderr, flush=True)
        raise SystemExit(e.exit_code) from None


def worker_args(cfg) -> list:
    """`tna train` flags that rebuild `cfg` exactly (values that differ from the defaults)."""
    args = []
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        if value == field.default or value is None:
            continue
        flag = "--" + field.name.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + flag[2:])
        else:
            args.append(f"{flag}={value!r}" if isinstance(value, float) else f"{flag}={value}")
    return args


def launch(cfg, nproc: int, debug: bool = False) -> int:
    """Run `tna train` (per `cfg`) in `nproc` processes under torchrun; returns the exit code.

    Same as `torchrun --standalone --nproc-per-node NPROC -m tna.cli train FLAGS`, with
    torchrun's own log lines silenced: rank 0 prints the run's lines and errors."""
    if env_world().size > 1:
        raise TnaError("--nproc starts torchrun itself; under torchrun leave it out")
    if cfg.device == "cuda":
        import torch
        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if visible == 0:
            raise TnaError("--device cuda: no CUDA device is visible, so nccl cannot run; use "
                           "--device cpu (gloo)")
        if nproc > visible:
            raise TnaError(f"--nproc {nproc} --device cuda needs one GPU per process, "
                           f"{visible} are visible; use --nproc {visible}")
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # torchrun sets 1 thread per process when unset (and says so); share the cores instead.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    argv = ["--standalone", f"--nproc-per-node={nproc}",
            f"--monitor-interval={MONITOR_INTERVAL_S}", "-m", "tna.cli",
            *(["--debug"] if debug else []), "train", *worker_args(cfg)]
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL if not debug else logging.NOTSET)
    try:
        run(parse_args(argv))
    except SignalException as e:            # Ctrl-C or kill: torchrun stopped the workers
        return 128 + int(e.sigval)
    except ChildFailedError as e:
        rank, failure = min(e.failures.items())
        if rank == 0 and failure.exitcode in (TnaError.exit_code, 130):
            return failure.exitcode         # rank 0 has printed its line
        code = failure.exitcode
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        print(f"error: training process {rank} of {nproc} {how}; see its message above (or "
              f"run with --nproc 1)", file=sys.stderr, flush=True)
        return code if 0 < code < 128 else 1
    finally:
        logging.disable(previous)
    return 0
