"""Tiny trained runs on digits, shared by the export tests (each trained once per session)."""
import pytest

# One quick epoch of the base alone on 96 digits: enough for non-trivial weights and spikes.
BASE = dict(dataset="digits", method="single", epochs=1, ternary_after=0, batch_size=32,
            limit=96, eval_batch_size=500, augment=False, progress=False,
            # The model scales direct input by 1/input_max, the file scales the first threshold
            # up; the model truncates 4096 * current where the file's integers are exact, so
            # its first layer can differ from the file's by a spike in rare cases. With the
            # older current decay 0.25 these runs' inputs hit none of them (the
            # block-by-block test in test_pool_as_conv.py relies on it).
            current_decay=0.25)

RUNS = {
    # flattened graded input into dense layers; ternary hidden layer
    "dense": dict(arch="16-12-out", weights="ternary"),
    # convs, flatten, dense; the hidden conv and the hidden dense layer are ternary
    "conv": dict(arch="4c3s2-8c3s2-16-out", weights="ternary"),
    # an average pool, exported as a grouped conv
    "pool": dict(arch="4c3-ap2-8-out", weights="ternary"),
    # full precision (8-bit) weights, for export --ternary
    "fp": dict(arch="16-12-out", weights="fp"),
    # learned decays (--learn-decays): the file must hold the decays the net trained with
    "decays": dict(arch="4c3s2-16-out", weights="ternary", learn_decays=True, decay_lr=20.0),
    # rate-coded binary spikes in: no input scaling, so the model and the file see the same
    "pool-rate": dict(arch="4c3-ap2-8-out", weights="fp", encoding="rate"),
}


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """trained(name) -> best.pt of the run RUNS[name], trained on first use."""
    from tna.train import TrainConfig, train

    cache = {}

    def get(name):
        if name not in cache:
            out = tmp_path_factory.mktemp(f"run-{name}") / "run"
            cache[name] = train(TrainConfig(**BASE, **RUNS[name], out=str(out)))
        return cache[name]

    return get
