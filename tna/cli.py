"""The `tna` command line: parse, call one library function, print.

Every option of `train`, `export` and `run` is also a key of the YAML file given with
`--config`; flags given on the command line win over the file, the file over the defaults.
Errors a user can fix print one line and exit 2; `--debug` shows the traceback.
"""
from __future__ import annotations

import dataclasses
import sys

import click

from tna import __version__
from tna.errors import TnaError

_HELP_FIELDS = {}   # filled per config class: field name -> help text from the source comment


def _field_help(cls) -> dict:
    """The trailing comment of each dataclass field line, used as its --help text (fields
    inherited from the training methods' option classes too)."""
    import inspect
    import re
    if cls in _HELP_FIELDS:
        return _HELP_FIELDS[cls]
    helps = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        for line in inspect.getsource(klass).splitlines():
            m = re.match(r"\s+(\w+): [^=]+=.*?#\s*(.*)$", line)
            if m:
                helps[m[1]] = m[2]
    _HELP_FIELDS[cls] = helps
    return helps


def _click_type(annotation: str):
    ann = annotation.replace(" ", "")
    if ann.startswith("int"):
        return int
    if ann.startswith("float"):
        return float
    return str


def config_options(cls, skip=()):
    """Decorator adding one option per field of config dataclass `cls` (default: not given)."""
    def deco(f):
        helps = _field_help(cls)
        own = cls.__dict__.get("__annotations__", {})     # the class's own fields first
        fields = sorted(dataclasses.fields(cls), key=lambda fld: fld.name not in own)
        for fld in reversed(fields):
            if fld.name in skip:
                continue
            flag = "--" + fld.name.replace("_", "-")
            text = helps.get(fld.name, "")
            if fld.default is not None:           # a None default is described in the help
                text += f" [default: {fld.default}]"
            if fld.type == "bool":
                f = click.option(f"{flag}/--no-{fld.name.replace('_', '-')}", fld.name,
                                 default=None, help=text)(f)
            else:
                f = click.option(flag, fld.name, type=_click_type(fld.type), default=None,
                                 help=text)(f)
        return f
    return deco


def build_config(cls, config_file, flags: dict, where: str):
    """defaults < YAML file < flags; unknown keys and wrong types are TnaErrors."""
    from pathlib import Path

    from tna.config import from_dict, load_yaml, presets
    from tna.train.config import TrainConfig
    if (config_file and cls is not TrainConfig and config_file in presets()
            and not Path(config_file).is_file()):
        raise TnaError(f"--config {config_file} is a training recipe (tna train --config "
                       f"{config_file}); `tna {where} --config` takes a YAML file of its own options")
    values = load_yaml(config_file) if config_file else {}
    cfg = from_dict(cls, values, where=str(config_file or where))
    given = {k: v for k, v in flags.items() if v is not None}
    return dataclasses.replace(cfg, **given) if given else cfg


def _config_help() -> str:
    from tna.config import presets
    return ("YAML file of options (keys as the flags, without --), or a named config: "
            + ", ".join(presets()) + ".")


_config_option = click.option("--config", "config_file", type=click.Path(dir_okay=False),
                              help=_config_help())
# export, run and import: the named configs are training recipes, so they are not offered there
_file_config_option = click.option(
    "--config", "config_file", type=click.Path(dir_okay=False),
    help="YAML file of this command's options (keys as the flags, without --)")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="tna")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx, debug):
    """tna: train SNNs with Twin Network Augmentation, export them to Lava netx with ternary
    weights, and run them on Lava (or Loihi 2) with proven parity.

    \b
    Quickstart (the first command: ~1.2 min on 2 CPU cores, ~80.5% test accuracy):
      tna train --dataset fashion-mnist --train-limit 6000 --epochs 3 --ternary-after 2 --out runs/fm
      tna export runs/fm --out fm.net
      tna run fm.net --backend lava-sim --dataset fashion-mnist --limit 200

    \b
    Full recipes: --config fmnist-cpu (2 CPU cores, about an hour) or --config fmnist-gpu.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


# --------------------------------------------------------------------------- train
from tna.train.config import TrainConfig  # noqa: E402  (light: no torch import)


def _train_help() -> str:
    """`tna train --help`: what the command does and every registered method, from its module."""
    from tna.train.methods import METHODS
    return "\n".join([
        "Train a base SNN (with its twin for --method tna) and write a run folder.", "",
        "The run folder holds checkpoint.pt (latest), best.pt, metrics.jsonl, curves.png, "
        "config.yaml and result.json (test accuracy of the best epoch).", "", "\b",
        "Methods (--method NAME; join them with '+' to sum their losses: tna+self-distill):",
        *(f"  {m.name:<13} {m.source}" for m in METHODS.values())])


@cli.command(help=_train_help(), epilog="\n".join([
    "\b",
    "Examples:",
    "  tna train --dataset digits --arch mlp --epochs 6 --ternary-after 3 --out runs/digits",
    "  tna train --dataset digits --arch mlp --epochs 6 --method tna+self-distill --out runs/sd",
    "  tna train --config fmnist-cpu           # Fashion-MNIST TNA T-SNN on 2 CPU cores, ~1 h",
    "  tna train --config paper-fmnist         # the paper's settings: needs its 250-epoch budget",
    "  tna train --config fmnist-gpu --device cuda --nproc 4     # data-parallel on 4 GPUs"]))
@_config_option
@click.option("--nproc", type=int, default=None,
              help="Train data-parallel in this many processes (torchrun; gloo on CPU, nccl "
                   "with --device cuda, one GPU each); --batch-size stays the global batch. "
                   "[default: 1]")
@click.option("--resume", "resume_run", is_flag=False, flag_value="", default=None,
              metavar="[RUN]",
              help="Continue a stopped run: --resume RUN reads RUN/config.yaml (flags beside "
                   "it must agree with it, except --epochs, --threads, --device, --progress); "
                   "a bare --resume continues --out with the flags given.")
@config_options(TrainConfig, skip=("resume",))
def train(config_file, nproc, resume_run, **flags):
    """Train a base SNN (with its twin for --method tna) and write a run folder.

    The run folder holds checkpoint.pt (latest), best.pt, metrics.jsonl, curves.png,
    config.yaml and result.json (test accuracy of the best epoch).
    """
    from tna.train import distributed
    from tna.train import train as run_train
    debug = click.get_current_context().find_root().obj["debug"]
    with distributed.quiet_worker(debug):     # under torchrun only rank 0 speaks
        if resume_run:
            cfg = _resume_config(resume_run, config_file, flags)
        else:
            cfg = build_config(TrainConfig, config_file, flags, "train")
            if resume_run == "":
                cfg = dataclasses.replace(cfg, resume=True)
        if nproc is not None and nproc < 1:
            raise TnaError(f"--nproc {nproc}: must be a whole number ≥ 1")
        if nproc is not None and nproc > 1:   # torchrun runs this command in each process
            sys.exit(distributed.launch(cfg, nproc, debug))
        path = run_train(cfg)
    if distributed.is_main():
        click.echo(str(path))


def _resume_config(run: str, config_file, flags: dict) -> TrainConfig:
    """The config of the run in folder `run` (its config.yaml), to continue it; flags given
    beside --resume RUN must agree with it, except the ones a resume may change."""
    from pathlib import Path

    from tna.config import from_dict, load_yaml
    from tna.train.config import RESUME_FREE
    saved = Path(run) / "config.yaml"
    if config_file:
        raise TnaError(f"--resume {run} reads {saved}; give no --config beside it")
    if not saved.is_file():
        raise TnaError(f"--resume {run}: no {saved}; give a run folder written by `tna train`")
    cfg = from_dict(TrainConfig, load_yaml(str(saved)), where=str(saved))
    given = {k: v for k, v in flags.items() if v is not None}
    for key, value in given.items():
        if key not in RESUME_FREE and key != "out" and getattr(cfg, key) != value:
            flag = "--" + key.replace("_", "-")
            raise TnaError(f"--resume {run}: {flag} {value} differs from the run's "
                           f"{getattr(cfg, key)!r} ({saved}); drop the flag to continue the "
                           f"same run, or train a new --out")
    if "out" in given and Path(given["out"]).resolve() != Path(run).resolve():
        raise TnaError(f"--resume {run}: --out {given['out']} is another folder; drop --out")
    free = {k: v for k, v in given.items() if k in RESUME_FREE}
    if "epochs" in free:      # before TrainConfig checks ternary_after against fewer epochs
        from tna.train.loop import check_resume_epochs
        check_resume_epochs(run, free["epochs"])
    return dataclasses.replace(cfg, out=str(run), resume=True, **free)


# --------------------------------------------------------------------------- export
from tna.export.config import ExportConfig  # noqa: E402


@cli.command(epilog="\n".join([
    "\b",
    "Example:",
    "  tna export runs/digits --out digits.net",
    "  tna export runs/fp-run/best.pt --ternary --out t.net   # ternarise after training",
    "  tna export runs/digits --out digits.nir                # NIR graph (also from a .net)"]))
@click.argument("checkpoint", type=click.Path())
@_file_config_option
@config_options(ExportConfig)
def export(checkpoint, config_file, **flags):
    """Export a run's base network (best.pt) as a Lava netx HDF5 file, or as a NIR graph.
    """
    from tna.export import export as run_export
    cfg = build_config(ExportConfig, config_file, flags, "export")
    if cfg.is_nir:
        if cfg.out == ExportConfig.out:          # the default name, model.net
            cfg = dataclasses.replace(cfg, out="model.nir")
        from tna.nir import export_nir
        click.echo(str(export_nir(checkpoint, cfg)))
        return
    if cfg.dt is not None or cfg.nir_form is not None:
        raise TnaError(f"--{'dt' if cfg.dt is not None else 'nir-form'} is for NIR graphs: use "
                       f"it with --format nir or an --out ending in .nir")
    click.echo(str(run_export(checkpoint, cfg)))


# --------------------------------------------------------------------------- run
from tna.deploy.config import RunConfig  # noqa: E402


@cli.command(epilog="\n".join([
    "\b",
    "Examples:",
    "  tna run digits.net --backend lava-sim --limit 100 --report parity.json",
    "  tna run digits.net --backend emulator --compare reference,emulator",
    "  tna run any.net --input spikes.npy --save-output out.npy",
    "  tna run encoder.net --input x.npy --skip-layers 1   # past an input layer with a neuron",
    "  tna run snn.nir --input spikes.npy --dt 1e-4 --backend emulator",
    "  tna run m.net --backend lava-sim --shard 0/3 --shard-dir parts   # and 1/3, 2/3, then:",
    "  tna run --merge parts --report parity.json",
    "  tna run m.net --backend lava-sim --executor slurm --shards 20 --report parity.json"]))
@click.argument("net", type=click.Path(), required=False)
@_file_config_option
@click.option("--dt", type=float, default=None,
              help="NIR graphs only: seconds per time step [default: the graph's metadata]")
@click.option("--merge", "merge_dir", type=click.Path(), default=None,
              help="Join the shards in DIR (tna run … --shard K/N --shard-dir DIR) into the "
              "report one run gives; --report/--plot/--save-* say where it goes.")
@config_options(RunConfig)
def run(net, config_file, dt, merge_dir, **flags):
    """Run a netx file (or a NIR graph, imported first) on a backend and check parity with
    the PyTorch reference; a NIR graph is also compared with its own float semantics.

    Exit code 0 when parity holds within --tolerance, 1 when it does not, 2 on bad input
    (including a net that `tna validate` finds problems in: the run cannot start), 3 when a
    check of tna's own report fails (a tna bug: no verdict is given).
    """
    from tna.deploy import run as run_net
    from tna.nir import is_nir_file, run_nir
    cfg = build_config(RunConfig, config_file, flags, "run")
    if merge_dir is not None:
        if net is not None:
            raise TnaError("--merge DIR joins the shards of a run that named its net; give no "
                           "NET with it")
        from tna.deploy.runner import merge
        result = merge(merge_dir, cfg)
        click.echo(result.summary())
        sys.exit(0 if result.ok else 1)
    if net is None:
        raise TnaError("give the net to run: tna run NET (a .net or .nir file)")
    if is_nir_file(net):
        result = run_nir(net, cfg, dt)
    elif dt is not None:
        raise TnaError("--dt is for NIR graphs; a netx file's decays are per step already")
    else:
        result = run_net(net, cfg)
    if result is None:                 # --executor slurm: submitted, it says where to look
        return
    click.echo(result.summary())
    sys.exit(0 if result.ok else 1)


# --------------------------------------------------------------------------- import
from tna.nir.config import ImportConfig  # noqa: E402  (light: no nir, h5py or torch import)


@cli.command("import", epilog="\n".join([
    "\b",
    "Examples:",
    "  tna import digits.nir --out digits.net          # a graph tna exported: the same integers",
    "  tna import snn.nir --dt 1e-4 --timesteps 20 --out snn.net   # e.g. from snnTorch"]))
@click.argument("graph", type=click.Path())
@_file_config_option
@config_options(ImportConfig)
def import_(graph, config_file, **flags):
    """Turn a NIR graph (nir.write's HDF5) into a netx file Lava loads.

    Values Loihi cannot hold exactly (continuous time constants, float weights) are quantised
    by the rule in `tna.nir.read`; each layer's rounding is printed and kept in the metadata.
    """
    from tna.nir import import_nir
    cfg = build_config(ImportConfig, config_file, flags, "import")
    out, conversion = import_nir(graph, cfg)
    for q in conversion.layers:
        click.echo(q.summary(), err=True)
    click.echo(str(out))


# --------------------------------------------------------------------------- inspect / validate
@cli.command(epilog="\n".join([
    "\b",
    "Examples:",
    "  tna inspect digits.net --measure --limit 100",
    "  tna inspect digits.net --loihi2 --measure --report est.json   # Loihi 2 cores, energy",
    "  tna inspect foreign.net --measure --input x.npy   # a file without tna metadata"]))
@click.argument("net", type=click.Path())
@click.option("--dataset", default=None, help="Also measure spikes and synaptic ops per "
              "inference on this data set (default: the file's).")
@click.option("--measure/--no-measure", default=False, help="Measure activity on data.")
@click.option("--limit", type=int, default=200, help="Samples for --measure.")
@click.option("--data-dir", default=None, help="Data folder for --measure.")
@click.option("--input", "input_npy", type=click.Path(dir_okay=False), default=None,
              help="Measure on this .npy of integer inputs instead of a data set (as tna "
                   "run --input; for files without tna metadata).")
@click.option("--input-layout", type=click.Choice(["chw", "whc"]), default=None,
              help="--input's layout, as tna run's [default: the one its shape fits]")
@click.option("--input-message-bits", type=click.IntRange(0, 24), default=None,
              help="Graded input bits of --input, as tna run's [default: the file's, else 0]")
@click.option("--loihi2", is_flag=True, help="Show the Loihi 2 fit estimate layer by layer "
              "(cores, tile per core, synaptic memory, the limit that binds); with --measure "
              "or --input also time and energy per inference. An estimate of Intel's "
              "compiler, not its output.")
@click.option("--syn-mem", type=click.IntRange(min=1), default=None,
              help="Synaptic memory per core for the estimate, in 64-bit words [default: "
                   "12000, the budget Intel's compiler printed since 2022-10; 8184 before]")
@click.option("--loader", type=click.Choice(["tna", "netx"]), default=None,
              help="Whose weight bits the estimate gives the synapses: tna (tna run's "
                   "loader, 2-bit ternary convs) or netx (unmodified netx) [default: tna]")
@click.option("--report", type=click.Path(dir_okay=False), default=None,
              help="Also write every number (and the Loihi 2 estimate) to this JSON file.")
@click.option("--skip-layers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Estimate and measure what netx.hdf5.Network(skip_layers=N) runs.")
def inspect(net, dataset, measure, limit, data_dir, input_npy, input_layout,
            input_message_bits, loihi2, syn_mem, loader, report, skip_layers):
    """Per-layer neurons, synapses, weight bits and memory of a netx file, and an estimate of
    what it needs on Loihi 2 (cores, chips; with data, time and energy per inference)."""
    from tna.deploy.inspect import inspect_net
    from tna.estimate import EstimateConfig
    inputs = {"input": input_npy, "input_layout": input_layout,
              "input_message_bits": input_message_bits} if input_npy else None
    if not input_npy and (input_layout or input_message_bits is not None):
        raise TnaError("--input-layout and --input-message-bits describe an --input array")
    given = {k: v for k, v in (("syn_mem", syn_mem), ("loader", loader)) if v is not None}
    click.echo(inspect_net(net, dataset=dataset, limit=limit, data_dir=data_dir,
                           measure=measure or dataset is not None or input_npy is not None,
                           inputs=inputs, loihi2=loihi2, estimate_cfg=EstimateConfig(**given),
                           report=report, skip_layers=skip_layers))


@cli.command(epilog="\n".join([
    "\b",
    "Example:",
    "  tna validate digits.net",
    "  tna validate encoder.net --skip-layers 1   # as netx.hdf5.Network(..., skip_layers=1)"]))
@click.argument("net", type=click.Path())
@click.option("--skip-layers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Check as netx.hdf5.Network(skip_layers=N) loads the file.")
def validate(net, skip_layers):
    """Check a netx file against what netx and Loihi 2 accept; name every problem.

    Problems stop netx from loading or running the net (and `tna run` refuses it); warnings
    name what netx runs but Loihi 2 cannot hold, or runs with changed values (`tna run` runs it),
    and a net that the Loihi 2 estimate (tna inspect --loihi2) puts on more than one chip or
    cannot map.
    Exit code 0 when netx runs the net (warnings or not), 1 when problems were found, 2 when the
    file cannot be read.
    """
    from tna import netx
    model = netx.read_net(net)
    problems = netx.validate(model, skip_layers=skip_layers)
    warnings = netx.loihi_warnings(model)
    if not problems:                   # the Loihi 2 estimate needs layers that chain
        from tna.estimate import estimate
        warnings += estimate(model, skip_layers=skip_layers).warnings()
    for w in warnings:
        click.echo(f"{net}: warning: {w}")
    if skip_layers == 0 and netx.has_input_neuron(model):
        click.echo(f"{net}: note: {netx.INPUT_NEURON_NOTE}")
    silent = netx.silent_readout(model)
    if silent:
        click.echo(f"{net}: note: {silent}; its spike count is 0 for every sample, so `tna "
                   f"run` reads its voltage")
    if problems:
        for p in problems:
            click.echo(f"{net}: {p}")
        click.echo(f"{len(problems)} problem(s)")
        sys.exit(1)
    note = f", {len(warnings)} warning(s)" if warnings else ""
    click.echo(f"{net}: valid ({len(model.layers)} layers{note})")


# --------------------------------------------------------------------------- bench
def _method_names() -> list:
    from tna.train.methods import METHODS
    return list(METHODS)


def _bench_config_help() -> str:
    from tna.config import presets
    return ("YAML file of bench keys (preset, train, methods, weights, seeds, alphas, teacher, "
            "jobs, deploy_limit, out), or a named bench: " + ", ".join(presets("bench")) + ".")


def _number_or_text(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    import yaml
    return yaml.safe_load(text)      # true/false/null and lists, as in a YAML file


def _csv_list(text, kind=str, flag=""):
    if text is None:
        return None
    try:
        return [kind(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise TnaError(f"{flag} {text!r}: give a comma list of {kind.__name__} values") from None


@cli.command(epilog="\n".join([
    "\b",
    "Examples:",
    "  tna bench --config digits-tiny --out runs/bench-digits     # 8 cells, ~30 s",
    "  tna bench --config fmnist-cpu --jobs 1                     # the paper's tables on 2 cores",
    "  tna bench --config fmnist-cpu --executor slurm --partition cpu --cpus 2 --time 2:00:00",
    "  tna bench --preset fmnist-cpu --set epochs=8 --set ternary_after=5 --methods single,tna \\",
    "            --weights fp,ternary --seeds 3 --alphas 1e-2,1e-4,1e-6 --out runs/alpha"]))
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help=_bench_config_help())
@click.option("--preset", default=None, help="Training config (name or YAML) every cell starts "
              "from, e.g. fmnist-cpu.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="A training key over the preset, for every cell (repeatable): --set epochs=8")
@click.option("--methods", default=None,
              help="Comma list of training methods: " + ", ".join(_method_names())
              + "; a+b sums two methods' losses (tna+self-distill).")
@click.option("--weights", default=None, help="Comma list of fp, ternary, binary.")
@click.option("--seeds", default=None, help="A count (3: seeds 0, 1, 2) or a comma list.")
@click.option("--alphas", default=None, help="Comma list of alphas for tna and kd-ce cells.")
@click.option("--teacher", type=click.Choice(["single-fp", "tna-twin"]), default=None,
              help="kd / kd-ce teacher: the single fp net of the same seed, or the tna twin.")
@click.option("--jobs", type=int, default=None, help="Cells at once (processes; on a GPU, "
              "cells sharing it).")
@click.option("--deploy-limit", type=int, default=None, help="Deployed accuracy on the first "
              "N test samples (default: all).")
@click.option("--out", default=None, help="The bench folder (default runs/bench).")
@click.option("--cell", default=None, help="Run this one cell (its name, or its index in the "
              "grid) and nothing else: what a scheduler's array task runs.")
@click.option("--report-only", is_flag=True, help="Write the report of the finished cells; "
              "train nothing.")
@click.option("--force", is_flag=True, default=None, help="Take over the lock of a cell "
              "another process seems to run (it crashed on another host).")
@click.option("--executor", type=click.Choice(["local", "slurm"]), default=None,
              help="local: run the cells here (default) | slurm: submit them as SLURM job "
              "arrays (sbatch), then a job that writes the report.")
@click.option("--partition", default=None, help="slurm: the partition.")
@click.option("--time", "time_limit", default=None, help="slurm: time limit per cell, e.g. 2:00:00.")
@click.option("--cpus", type=int, default=None, help="slurm: CPUs per cell (default 2).")
@click.option("--mem", default=None, help="slurm: memory per cell, e.g. 8G.")
@click.option("--gpus", type=int, default=None, help="slurm: GPUs per cell.")
@click.option("--throttle", type=int, default=None, help="slurm: array tasks running at once.")
def bench(config_file, preset, sets, methods, weights, seeds, alphas, teacher, jobs,
          deploy_limit, out, cell, report_only, force, executor, partition, time_limit, cpus,
          mem, gpus, throttle):
    """Train a grid of methods x weight modes x alphas x seeds, deploy each on the emulator,
    and write results.csv, tables.md (the paper's Tables 1 and 2, a paired test per claim)
    and plots into the bench folder. Run it again to resume: finished cells are kept.
    """
    from tna.bench import BenchConfig, bench as run_bench
    from tna.config import from_dict, load_yaml
    values = load_yaml(config_file, "bench") if config_file else {}
    cfg = from_dict(BenchConfig, values, where=str(config_file or "bench"))
    train = dict(cfg.train)
    for item in sets:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise TnaError(f"--set {item!r}: write KEY=VALUE, e.g. --set epochs=8")
        train[key.strip()] = _number_or_text(value.strip())
    if seeds is not None:
        seeds = int(seeds) if seeds.strip().isdigit() else _csv_list(seeds, int, "--seeds")
    given = {"preset": preset, "methods": _csv_list(methods), "weights": _csv_list(weights),
             "seeds": seeds, "alphas": _csv_list(alphas, float, "--alphas"), "teacher": teacher,
             "jobs": jobs, "deploy_limit": deploy_limit, "out": out, "force": force,
             "executor": executor}
    given = {k: v for k, v in given.items() if v is not None}
    slurm = {**cfg.slurm, **{k: v for k, v in dict(
        partition=partition, time=time_limit, cpus=cpus, mem=mem, gpus=gpus,
        throttle=throttle).items() if v is not None}}
    cfg = dataclasses.replace(cfg, train=train, slurm=slurm, **given)
    folder = run_bench(cfg, cell=cell, report_only=report_only)
    if cell is None and cfg.executor == "local" and (folder / "tables.md").exists():
        click.echo(str(folder / "tables.md"))


# --------------------------------------------------------------------------- demo
@cli.command(epilog="\n".join([
    "\b",
    "Example:",
    "  tna demo --out runs/demo"]))
@click.option("--out", default="runs/demo", help="Folder for the run, the .net and the report.")
@click.option("--epochs", type=int, default=None, help="Training epochs (default: by data set).")
@click.option("--lava-samples", type=int, default=100, help="Test samples run on lava-sim.")
@click.option("--progress/--no-progress", default=True,
              help="Progress bars (drawn only on a terminal in any case).")
def demo(out, epochs, lava_samples, progress):
    """Train briefly, export ternary, check the full test set on the emulator and a sample
    on lava-sim. Uses Fashion-MNIST when installed, else scikit-learn digits.
    """
    from tna.demo import demo as run_demo
    ok = run_demo(out, epochs=epochs, lava_samples=lava_samples, progress=progress)
    sys.exit(0 if ok else 1)


def _usage_message(e: click.UsageError) -> str:
    """click's message, with typo suggestions only for options that are close to the typo
    (click also offers e.g. --nproc for --epoch)."""
    import difflib
    if isinstance(e, click.NoSuchOption) and e.possibilities:
        close = difflib.get_close_matches(e.option_name, e.possibilities, n=3, cutoff=0.8)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        return f"no such option: {e.option_name}{hint}"
    return e.format_message()


def main(argv=None) -> None:
    """Entry point: one-line errors with exit code 2 unless --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="tna", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort as e:
        # click turns Ctrl-C (KeyboardInterrupt) into Abort after printing a blank line that
        # ends the terminal's "^C".
        interrupted = isinstance(e.__cause__, KeyboardInterrupt)
        if debug and interrupted:
            raise
        click.echo("interrupted" if interrupted else "aborted", err=True)
        sys.exit(130)
    except click.UsageError as e:
        if debug:
            raise
        cmd = e.ctx.command_path if e.ctx else "tna"
        click.echo(f"error: {_usage_message(e)} (see '{cmd} --help')", err=True)
        sys.exit(2)
    except TnaError as e:
        if debug:
            raise
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        if debug:
            raise
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
