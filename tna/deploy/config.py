"""`RunConfig`: the options of `tna run`."""
from __future__ import annotations

from dataclasses import dataclass, field

from tna.deploy.backends import BACKENDS
from tna.config import check_int
from tna.errors import TnaError
from tna.netx import LOADERS


@dataclass(frozen=True)
class RunConfig:
    backend: str = "lava-sim"         # lava-sim (Lava CPU, fixed_pt) | loihi2 | emulator | reference
    compare: str | None = None        # e.g. reference,emulator or emulator,lava-sim; default reference,BACKEND
    dataset: str | None = None        # default: the data set named in the file's metadata
    data_dir: str | None = None       # data folder override
    split: str = "test"               # test | val
    limit: int | None = None          # run the first N samples of the split (all when not given)
    input: str | None = None          # .npy of integer inputs (N?, neurons, T), (N?, C, H, W, T) or (N?, W, H, C, T)
    input_layout: str | None = None   # chw (tna's C, H, W) | whc (netx's W, H, C, as net.inp.shape); default: the one the array's shape fits
    save_output: str | None = None    # .npy of the backend's aligned readout (voltage or spikes, as the net reads out), predicted classes as *_predicted.npy
    save_input: str | None = None     # .npy of the integer inputs the backends got (N, *shape, T), labels as *_labels.npy
    report: str | None = None         # parity.json to write (and, next to it, confusion and spike raster PNGs)
    plot: str | None = None           # folder for confusion.png and raster.png (default: next to --report)
    tolerance: float = 0.0            # % of samples allowed to differ (any output value); 0 = exact
    timesteps: int | None = None      # steps per sample: T for files without tna metadata (default: the --input's T); for a tna file, T' < its T runs the first T' steps (accuracy at fewer steps)
    readout: str | None = None        # voltage | spike; default: the file's (for foreign files spike, or voltage when the output layer cannot spike)
    input_message_bits: int | None = None   # graded input bits; default: the file's (0 = binary)
    lava_models: str = "fast"         # fast: exact faster conv, async runtime | stock: lava-nc's own fixed_pt models
    loader: str = "tna"               # tna: netx's loader + 2-bit ternary convs (tna.lava.net) | netx: unmodified netx (8-bit convs)
    skip_layers: int = 0              # netx.hdf5.Network(skip_layers=N): data enters layer N (e.g. past an input encoder)
    per_layer: bool = False           # also compare every layer's u, v and spikes (emulator vs Lava)
    layer_samples: int = 20           # samples for --per-layer (every layer's u, v and spikes, emulator vs Lava)
    progress: bool = True             # progress bar over samples
    shard: str | None = None          # K/N: run block K (0..N-1) of N of the samples and save its raw results in --shard-dir (tna run --merge DIR joins them)
    shard_dir: str | None = None      # folder of the shard files (--shard, --shards)
    executor: str = "local"           # local: run here | slurm: --shards N SLURM array tasks, then a job that merges them
    shards: int = 1                   # with --executor slurm: the number of shards (array tasks)
    slurm: dict = field(default_factory=dict)   # sbatch options (YAML): partition, time, cpus, mem, gpus, throttle, account, extra

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise TnaError(f"backend = {self.backend!r}: choose one of {', '.join(BACKENDS)}")
        if self.lava_models not in ("fast", "stock"):
            raise TnaError(f"lava_models = {self.lava_models!r}: choose fast or stock")
        if self.loader not in LOADERS:
            raise TnaError(f"loader = {self.loader!r}: choose one of {', '.join(LOADERS)}")
        if self.split not in ("test", "val"):
            raise TnaError(f"split = {self.split!r}: choose test or val")
        for key in ("limit", "timesteps", "layer_samples"):
            check_int(key, getattr(self, key), 1, allow_none=True)
        check_int("skip_layers", self.skip_layers, 0)
        check_int("shards", self.shards, 1)
        if self.executor not in ("local", "slurm"):
            raise TnaError(f"executor = {self.executor!r}: choose local or slurm")
        if self.shard is not None:
            from tna.deploy.shards import parse
            parse(self.shard)
            if not self.shard_dir:
                raise TnaError("--shard K/N saves its block's results: give --shard-dir DIR "
                               "(tna run --merge DIR joins the shards)")
            if self.per_layer:
                raise TnaError("--per-layer compares a few samples layer by layer: run it "
                               "without --shard")
        if self.executor == "slurm" and self.shards < 2:
            raise TnaError("--executor slurm runs a parity run in shards: give --shards N "
                           "(N >= 2)")
        if not isinstance(self.slurm, dict):
            raise TnaError("slurm: a mapping of sbatch options (partition, time, cpus, ...)")
        if not 0 <= self.tolerance <= 100:
            raise TnaError(f"tolerance = {self.tolerance!r}: a percentage in [0, 100]")
        if self.readout not in (None, "voltage", "spike"):
            raise TnaError(f"readout = {self.readout!r}: choose voltage or spike")
        if self.input_message_bits is not None and not 0 <= self.input_message_bits <= 24:
            raise TnaError(f"input_message_bits = {self.input_message_bits}: must be 0..24")
        if self.input_layout not in (None, "chw", "whc"):
            raise TnaError(f"input_layout = {self.input_layout!r}: choose chw (tna's C, H, W) "
                           f"or whc (netx's W, H, C)")
        if self.input_layout is not None and not self.input:
            raise TnaError("--input-layout describes an --input array; a data set's layout is "
                           "known")
        if self.input and self.dataset:
            raise TnaError("give either --input or --dataset, not both")
        if self.compare is not None:
            names = self.compare_list
            bad = [n for n in names if n not in BACKENDS]
            if bad or len(names) < 2 or len(set(names)) != len(names):
                raise TnaError(f"compare = {self.compare!r}: list two or more different backends "
                               f"of {', '.join(BACKENDS)}, e.g. reference,emulator")

    @property
    def compare_list(self) -> list:
        if self.compare is None:
            return ["reference"] if self.backend == "reference" else ["reference", self.backend]
        return [n.strip() for n in self.compare.split(",") if n.strip()]
