"""Config dataclasses: dict and YAML round trips, unknown keys, wrong types, bad values."""
import dataclasses

import pytest
import yaml

from tna.config import from_dict, load_yaml, presets, resolve_config, to_dict
from tna.deploy.config import RunConfig
from tna.errors import TnaError
from tna.export.config import ExportConfig
from tna.train.config import TrainConfig

CONFIG_FILES = [resolve_config(name) for name in presets()]

# One non-default value per field kind, so a round trip that dropped a field would show.
NON_DEFAULT = {
    TrainConfig: dict(method="kd-ce", teacher="runs/teacher/best.pt", weights="binary",
                      dataset="digits", limit=50, augment=False, encoding="rate", input_bits=3,
                      arch="16c3-32-out", timesteps=7, threshold=0.75, epochs=9, lr=0.002,
                      alpha=0.5, delta=0.2, ternary_after=3, readout="spike", out="x/y"),
    ExportConfig: dict(out="a.net", ternary=True, delta=0.3, split="val", limit=7,
                       input_message_bits=6, verify=False),
    RunConfig: dict(backend="emulator", compare="reference,emulator", split="val", limit=3,
                    tolerance=1.5, readout="spike", input_message_bits=0, per_layer=True),
}
CLASSES = list(NON_DEFAULT)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_defaults_round_trip_through_dict(cls):
    cfg = cls()
    assert from_dict(cls, to_dict(cfg)) == cfg


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_non_defaults_round_trip_through_dict_and_yaml(cls, tmp_path):
    cfg = cls(**NON_DEFAULT[cls])
    assert cfg != cls()
    assert from_dict(cls, to_dict(cfg)) == cfg
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    assert from_dict(cls, load_yaml(path)) == cfg


def test_dashed_keys_as_on_the_command_line(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("batch-size: 32\nternary-after: 1\nepochs: 2\ndataset: digits\n")
    cfg = from_dict(TrainConfig, load_yaml(path))
    assert (cfg.batch_size, cfg.ternary_after, cfg.epochs) == (32, 1, 2)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_unknown_key_is_named(cls):
    with pytest.raises(TnaError, match="unknown key 'bogus_option'"):
        from_dict(cls, {"bogus_option": 1}, where="my.yaml")
    with pytest.raises(TnaError, match="my.yaml"):
        from_dict(cls, {"bogus_option": 1}, where="my.yaml")


def test_unknown_key_suggests_a_close_one():
    with pytest.raises(TnaError, match="did you mean 'batch_size'"):
        from_dict(TrainConfig, {"batch": 3})


@pytest.mark.parametrize("cls,key,value", [
    (TrainConfig, "epochs", "3"),
    (TrainConfig, "epochs", 2.5),
    (TrainConfig, "lr", "fast"),
    (TrainConfig, "lr", True),           # a bool is not a number here
    (TrainConfig, "augment", 1),         # an int is not a bool
    (TrainConfig, "limit", [10]),
    (ExportConfig, "ternary", "yes"),
    (ExportConfig, "limit", 1.5),
    (RunConfig, "tolerance", "0"),
    (RunConfig, "limit", False),
])
def test_wrong_type_is_named(cls, key, value):
    with pytest.raises(TnaError, match=rf"{key} = .*should be"):
        from_dict(cls, {key: value})


def test_int_accepted_for_float_and_none_for_optional():
    cfg = from_dict(TrainConfig, {"lr": 1, "limit": None, "teacher": None})
    assert cfg.lr == 1 and cfg.limit is None


@pytest.mark.parametrize("cls,kw,name", [
    (TrainConfig, {"method": "twin"}, "method"),
    (TrainConfig, {"weights": "int4"}, "weights"),
    (TrainConfig, {"epochs": 0}, "epochs"),
    (TrainConfig, {"lr": 0.0}, "lr"),
    (TrainConfig, {"lr_gamma": 1.5}, "lr_gamma"),
    (TrainConfig, {"alpha": -1.0}, "alpha"),
    (TrainConfig, {"input_bits": 9}, "input_bits"),
    (TrainConfig, {"dropout": 1.0}, "dropout"),
    (TrainConfig, {"threshold": 0.0}, "threshold"),
    (TrainConfig, {"current_decay": 1.5}, "current_decay"),
    (TrainConfig, {"lr": float("nan")}, "lr"),
    (TrainConfig, {"method": "kd"}, "teacher"),                       # kd needs a teacher
    (TrainConfig, {"epochs": 2, "ternary_after": 2}, "ternary_after"),
    (ExportConfig, {"split": "train"}, "split"),
    (ExportConfig, {"delta": 5.0}, "delta"),
    (ExportConfig, {"input_message_bits": 0}, "input_message_bits"),
    (ExportConfig, {"limit": 0}, "limit"),
    (RunConfig, {"backend": "gpu"}, "backend"),
    (RunConfig, {"compare": "reference"}, "compare"),
    (RunConfig, {"compare": "reference,reference"}, "compare"),
    (RunConfig, {"compare": "reference,magic"}, "compare"),
    (RunConfig, {"tolerance": 101.0}, "tolerance"),
    (RunConfig, {"limit": 0}, "limit"),
    (RunConfig, {"readout": "rate"}, "readout"),
])
def test_bad_value_is_named(cls, kw, name):
    with pytest.raises(TnaError, match=name):
        from_dict(cls, kw)
    with pytest.raises(TnaError, match=name):
        cls(**kw)


def test_fp_weights_need_no_ternary_epochs():
    cfg = TrainConfig(weights="fp", epochs=1, ternary_after=5)
    assert cfg.weights == "fp"


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().epochs = 3


def test_load_yaml_errors(tmp_path):
    with pytest.raises(TnaError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1, 2\nlr: 3\n")
    with pytest.raises(TnaError, match="not valid YAML"):
        load_yaml(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(TnaError, match="mapping"):
        load_yaml(listy)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_yaml(empty) == {}


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_shipped_config_loads(path):
    """Every shipped config is a valid config of some stage (train, export or run)."""
    data = load_yaml(path)
    errors = []
    for cls in CLASSES:
        try:
            from_dict(cls, data, where=str(path))
            return
        except TnaError as e:
            errors.append(f"{cls.__name__}: {e}")
    pytest.fail(f"{path.name} is not a valid config of any stage:\n" + "\n".join(errors))
