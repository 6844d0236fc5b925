"""`tna bench`: a tiny grid on digits end to end, resuming, and the config's errors."""
import json
import os
import re

import pytest

from tna.bench import BenchConfig, bench
from tna.bench.grid import Cell, cells, teacher_cell
from tna.errors import TnaError

TINY = dict(preset="digits-quick", train={"epochs": 1, "ternary_after": 0},
            methods=["single", "tna"], weights=["ternary"], seeds=2, progress=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "b"
    bench(BenchConfig(**TINY, out=str(out)))
    return out


def test_tiny_grid_writes_csv_tables_and_plots(tiny):
    rows = (tiny / "results.csv").read_text().splitlines()
    assert rows[0].startswith("cell,method,weights,alpha,seed")
    assert len(rows) == 1 + 4                                   # 2 methods x 2 seeds
    for name in ("single-ternary-s0", "single-ternary-s1", "tna-ternary-a0.0001-s0",
                 "tna-ternary-a0.0001-s1"):
        r = json.loads((tiny / name / "cell.json").read_text())
        assert r["parity"] is True and r["deployed_samples"] == 359     # all of digits' test
        assert 30 < r["deployed_acc"] <= 100 and 30 < r["torch_test_acc"] <= 100
        assert 0 < r["weight_kib_needed"] <= r["weight_kib_netx"]   # netx: dense at 2 bits too
        assert r["spikes_per_inference"] > 0 and r["synops_per_inference"] > 0
        assert r["loihi2_cores"] >= 2 and r["loihi2_chips"] == 1      # the Loihi 2 estimate
        assert 0 < r["loihi2_uj_low"] < r["loihi2_uj_high"]
        assert 0 <= r["load_mean"] <= r["load_max"] and r["cores"] == os.cpu_count()
    tables = (tiny / "tables.md").read_text()
    assert "## Table 1" in tables and "## Table 2" in tables and "TNA beats a single network" \
        in tables
    assert "| T-SNN |" in tables and "4/4 exact" in tables
    assert re.search(r"\| \d+ cores, 1 chip, [\d.]+–[\d.]+ µJ \|", tables)
    assert "Machine load while the cells ran" in tables
    from tna.bench.report import tables as make_tables
    noted = make_tables([json.loads((tiny / n / "cell.json").read_text()) for n in
                         ("single-ternary-s0", "tna-ternary-a0.0001-s0")], "digits", None,
                        "Smoke test: not a result")
    assert noted.splitlines()[2] == "**Smoke test: not a result**"
    for png in ("methods.png", "memory.png"):
        assert (tiny / png).read_bytes()[:4] == b"\x89PNG"
    assert not (tiny / "alpha_sweep.png").exists()         # one alpha is no sweep


def test_rerun_skips_finished_cells_and_resumes_a_killed_one(tiny):
    done = tiny / "single-ternary-s0" / "cell.json"
    mtime = done.stat().st_mtime_ns
    # a cell killed after training finished but before its record: only deploy runs again
    killed = tiny / "tna-ternary-a0.0001-s1"
    (killed / "cell.json").unlink()
    trained = (killed / "run" / "best.pt").stat().st_mtime_ns
    bench(BenchConfig(**TINY, out=str(tiny)))
    assert done.stat().st_mtime_ns == mtime                      # not redone
    assert (killed / "cell.json").exists()
    assert (killed / "run" / "best.pt").stat().st_mtime_ns == trained   # not retrained
    # a smaller grid in the same folder reports every finished cell of the folder
    bench(BenchConfig(**{**TINY, "methods": ["single"]}, out=str(tiny)))
    assert len((tiny / "results.csv").read_text().splitlines()) == 1 + 4


def test_killed_mid_training_resumes_from_its_checkpoint(tmp_path):
    cfg = BenchConfig(**{**TINY, "methods": ["single"], "seeds": [0],
                         "train": {"epochs": 2, "ternary_after": 0}}, out=str(tmp_path))
    bench(cfg)
    run = tmp_path / "single-ternary-s0" / "run"
    first = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    # what a kill during epoch 2 leaves: epoch 1's checkpoint and no result or record
    from tna import checkpoint as ckpt
    state = ckpt.load(run / "checkpoint.pt")
    assert state["epoch"] == 2
    os.remove(tmp_path / "single-ternary-s0" / "cell.json")
    os.remove(run / "result.json")
    bench(cfg)      # resumes (`tna train --resume`); nothing to train, so the same result
    again = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["val_acc"] for r in again] == [r["val_acc"] for r in first]
    assert json.loads((tmp_path / "single-ternary-s0" / "cell.json").read_text())["parity"]


def test_other_settings_in_the_same_folder_are_refused(tiny):
    with pytest.raises(TnaError, match="other settings"):
        bench(BenchConfig(**{**TINY, "train": {"epochs": 3, "ternary_after": 1}},
                          out=str(tiny)))


def test_a_cell_done_in_seconds_says_seconds_not_0_0_min(capsys):
    import time

    from tna.bench.runner import _one
    record = {"torch_test_acc": 90.0, "deployed_acc": 90.0, "parity": True}
    _one(Cell("single", "fp", 0), BenchConfig(**TINY, jobs=2), {}, [], lambda: record,
         time.time() - 16.2)
    assert capsys.readouterr().err.strip().endswith("deployed 90.00% (exact), 16 s")


def test_cells_order_teachers_first_and_name_alphas():
    cfg = BenchConfig(methods=["kd", "tna", "single"], weights=["fp"], seeds=[0, 1],
                      alphas=[1e-2, 1e-4])
    names = [c.name for c in cells(cfg)]
    assert names[-2:] == ["kd-fp-s0", "kd-fp-s1"]
    assert "tna-fp-a0.01-s1" in names and "tna-fp-a0.0001-s0" in names
    assert len(names) == 2 + 4 + 2
    assert teacher_cell(Cell("kd", "fp", 1), cfg) == Cell("single", "fp", 1)
    twin = BenchConfig(methods=["kd-ce", "tna"], weights=["ternary"], teacher="tna-twin",
                       alphas=[1e-3])
    assert teacher_cell(Cell("kd-ce", "ternary", 0, 1e-3), twin) == Cell("tna", "ternary", 0,
                                                                          1e-3)


@pytest.mark.parametrize("kw, match", [
    (dict(methods=["tna", "nope"]), "methods"),
    (dict(weights=[]), "weights"),
    (dict(methods=["kd"]), "need the 'single' method"),
    (dict(methods=["kd", "single"], weights=["ternary"]), "with fp weights"),
    (dict(seeds=0), "seeds"),
    (dict(seeds=[1, 1]), "seeds"),
    (dict(alphas=[-1.0]), "alphas"),
    (dict(jobs=0), "jobs"),
    (dict(train={"seed": 3}), "set per cell"),
    (dict(teacher="oracle"), "teacher"),
])
def test_bad_config_names_the_key(kw, match):
    with pytest.raises(TnaError, match=match):
        BenchConfig(**kw)


def test_kd_with_the_tna_twin_as_teacher(tmp_path):
    cfg = BenchConfig(preset="digits-quick", train={"epochs": 1}, methods=["tna", "kd"],
                      weights=["fp"], seeds=1, teacher="tna-twin", out=str(tmp_path))
    bench(cfg)
    twin = tmp_path / "tna-fp-a0.0001-s0" / "twin.pt"    # kept with its tna cell
    assert twin.exists()
    r = json.loads((tmp_path / "kd-fp-s0" / "cell.json").read_text())
    assert r["teacher"] == "tna-fp-a0.0001-s0" and r["parity"]
    assert r["torch_test_acc"] > 30


def test_every_shipped_bench_config_is_valid():
    from tna.bench.grid import train_config
    from tna.config import from_dict, load_yaml, presets
    assert {"digits-tiny", "fmnist-cpu", "fmnist-cpu-full", "fmnist-kd-cpu", "fmnist-gpu",
            "paper"} <= set(presets("bench"))
    tiny = from_dict(BenchConfig, load_yaml("digits-tiny", "bench"), where="digits-tiny")
    assert tiny.note.startswith("Smoke test")        # its tables.md must not read as a result
    for name in presets("bench"):
        cfg = from_dict(BenchConfig, load_yaml(name, "bench"), where=name)
        for cell in cells(cfg):
            if cell.method not in ("kd", "kd-ce"):     # their teacher file does not exist yet
                train_config(cell, cfg)                # a valid TrainConfig for every cell


def test_the_full_budget_bench_is_the_fmnist_cpu_recipe_it_ran_with():
    import dataclasses

    from tna.bench.grid import train_config
    from tna.config import from_dict, load_yaml
    from tna.train import TrainConfig
    recipe = from_dict(TrainConfig, load_yaml("fmnist-cpu"), where="fmnist-cpu")
    cfg = from_dict(BenchConfig, load_yaml("fmnist-cpu-full", "bench"), where="full")
    names = {c.name for c in cells(cfg)}
    assert names == {f"{m}-{w}{'-a0.0001' if m == 'tna' else ''}-s{s}" for m in ("tna", "single")
                     for w in ("fp", "ternary") for s in (0, 1, 2)}
    per_cell = ("method", "weights", "seed", "out", "progress")
    for cell in cells(cfg):
        t = train_config(cell, cfg)
        assert (t.method, t.weights, t.seed) == (cell.method, cell.weights, cell.seed)
        then = {**dataclasses.asdict(recipe), "ternary_after": 20}   # the recipe when they ran
        assert {k: v for k, v in dataclasses.asdict(t).items() if k not in per_cell} == \
            {k: v for k, v in then.items() if k not in per_cell}
    assert cfg.deploy_limit is None and recipe.val_size == 0 and recipe.epochs == 34


def test_the_ternary_after_14_bench_is_the_recipe():
    import dataclasses

    from tna.bench.grid import train_config
    from tna.config import from_dict, load_yaml
    from tna.train import TrainConfig
    recipe = from_dict(TrainConfig, load_yaml("fmnist-cpu"), where="fmnist-cpu")
    cfg = from_dict(BenchConfig, load_yaml("fmnist-cpu-ta14", "bench"), where="ta14")
    assert {c.name for c in cells(cfg)} == {f"tna-ternary-a0.0001-s{s}" for s in (0, 1, 2)} | \
        {f"single-ternary-s{s}" for s in (0, 1, 2)}
    per_cell = ("method", "seed", "out", "progress")
    for cell in cells(cfg):
        t = dataclasses.asdict(train_config(cell, cfg))
        want = {**dataclasses.asdict(recipe), "ternary_after": 14}
        assert {k: v for k, v in t.items() if k not in per_cell} == \
            {k: v for k, v in want.items() if k not in per_cell}
    assert recipe.ternary_after == 14 and recipe.epochs == 34 and recipe.method == "tna"


def test_a_training_config_no_cell_can_use_fails_before_any_cell(tmp_path):
    cfg = BenchConfig(preset="fmnist-cpu", train={"epochs": 8}, methods=["single"],
                      weights=["ternary"], seeds=1, out=str(tmp_path / "b"))
    with pytest.raises(TnaError, match=r"ternary_after = \d+: must be below epochs \(8\)"):
        bench(cfg)
    assert not (tmp_path / "b").exists()          # nothing written: a fixed config may reuse it


def test_alpha_sweep_table_and_its_weight_mode():
    from tna.bench.report import sweep_mode, tables

    def rec(method, weights, alpha, seed, acc):
        return dict(cell=f"{method}-{weights}-{alpha}-{seed}", method=method, weights=weights,
                    alpha=alpha, seed=seed, torch_test_acc=acc, deployed_acc=acc + 0.1,
                    parity=True, arch="mlp", epochs=1, hardware="cpu", weight_kib_needed=1.0,
                    weight_kib_netx=1.0, dataset="digits")
    # binary sorts first, but the sweep is the mode with the most alphas
    records = [rec("tna", "binary", 1e-4, s, 80.0) for s in (0, 1)]
    records += [rec("tna", "fp", a, s, 90.0 + s + (a == 1e-2)) for a in (1e-2, 1e-4)
                for s in (0, 1)]
    records += [rec("single", w, None, s, 85.0) for w in ("fp", "binary") for s in (0, 1)]
    assert sweep_mode(records) == "fp"
    text = tables(records, "digits")
    assert "## α sweep (TNA, FP" in text
    assert "| 0.01 | 91.50 ± 0.71 (2) | 91.60 ± 0.71 (2) | – | – |" in text
    assert "| 0.0001 | 90.50 ± 0.71 (2) |" in text
    assert "α sweep" not in tables([r for r in records if r["alpha"] != 1e-2], "digits")


def test_new_methods_get_columns_claims_and_markers_from_the_registry(tmp_path):
    from tna.bench.report import plot_memory, plot_methods, tables

    def rec(method, alpha, seed, acc):
        return dict(cell=f"{method}-ternary-{alpha}-{seed}", method=method, weights="ternary",
                    alpha=alpha, seed=seed, torch_test_acc=acc, deployed_acc=acc,
                    parity=True, arch="mlp", epochs=1, hardware="cpu", weight_kib_needed=1.0,
                    weight_kib_netx=1.0, dataset="digits")
    records = [rec("single", None, s, 85.0 + s) for s in (0, 1)]
    records += [rec("tna", 1e-4, s, 86.0 + s) for s in (0, 1)]
    records += [rec("self-distill", None, s, 87.0 + s) for s in (0, 1)]
    records += [rec("tna+tasg", 1e-4, s, 88.0 + s) for s in (0, 1)]
    text = tables(records, "digits")
    for column in ("single (PyTorch)", "TNA (PyTorch)", "self-distill (PyTorch)",
                   "TNA+TASG (PyTorch)"):
        assert column in text
    assert "| self-distill beats a single network (T-SNN) | +2.00 [+2.00, +2.00] | holds |" \
        in text
    assert "| self-distill beats TNA (T-SNN) | +1.00" in text
    assert "TNA+TASG beats TNA (T-SNN) | +2.00" in text
    plot_methods(records, tmp_path)
    assert plot_memory(records, tmp_path).read_bytes()[:4] == b"\x89PNG"


def test_a_method_trained_only_at_other_weights_is_compared_with_the_t_snns():
    """A kd B-SNN grid has no single B-SNN: its claims pair it with the single and TNA T-SNNs,
    so the report says whether distillation buys back what the lost weight bits cost."""
    from tna.bench.report import tables

    def rec(method, weights, alpha, seed, acc, **extra):
        return dict(cell=f"{method}-{weights}-{alpha}-{seed}", method=method, weights=weights,
                    alpha=alpha, seed=seed, torch_test_acc=acc, deployed_acc=acc, parity=True,
                    arch="mlp", epochs=1, hardware="cpu", weight_kib_needed=1.0,
                    weight_kib_netx=1.0, dataset="digits", **extra)
    records = [rec("single", "ternary", None, s, 85.0 + s) for s in (0, 1)]
    records += [rec("tna", "ternary", 1e-4, s, 86.0 + s) for s in (0, 1)]
    records += [rec("kd-kl", "binary", None, s, 84.0 + 2 * s, train_method="kd")
                for s in (0, 1)]
    text = tables(records, "digits")
    assert "| kd-kl B-SNN beats a single T-SNN | -0.50 [-6.85, +5.85] | not shown |" in text
    assert "| kd-kl B-SNN beats TNA T-SNN | -1.50" in text
    assert "T-SNN beats a single T-SNN" not in text and "TNA B-SNN" not in text
    # the cost table says what each method's minutes ran on (threads differ across benches)
    assert "| kd-kl | B-SNN | 2 | 85.00 ± 1.41 | 2/2 exact | – | – | cpu | – | – |" in text
    # cells that ran on different thread counts keep their minutes apart, in the same order;
    # the median seconds per epoch too, "–" where a cell has none
    records[0].update(train_minutes=2.0, hardware="cpu, 1 threads")
    records[1].update(train_minutes=1.0, hardware="cpu, 2 threads", epoch_seconds_median=31.0)
    assert ("| single | T-SNN | 2 | 85.50 ± 0.71 | 2/2 exact | 2.00 / 1.00 | – / 31 | "
            "cpu, 1 threads / cpu, 2 threads |") in tables(records, "digits")


def test_the_median_epoch_leaves_out_an_epoch_slowed_by_another_job(tmp_path):
    """finished_records adds each cell's median training seconds per epoch from its
    metrics.jsonl (also for cells recorded before the field existed, and reused ones)."""
    from tna.bench.runner import finished_records
    cell = tmp_path / "single-ternary-s0"
    (cell / "run").mkdir(parents=True)
    (cell / "cell.json").write_text(json.dumps({"cell": cell.name, "train_minutes": 3.0}))
    (cell / "run" / "metrics.jsonl").write_text(
        "".join(json.dumps({"epoch": e, "train_seconds": s}) + "\n"
                for e, s in enumerate([30.0, 32.0, 118.0], 1)))
    bare = tmp_path / "tna-ternary-s0"
    bare.mkdir()
    (bare / "cell.json").write_text(json.dumps({"cell": bare.name}))
    got = {r["cell"]: r.get("epoch_seconds_median") for r in finished_records(tmp_path)}
    assert got == {"single-ternary-s0": 32.0, "tna-ternary-s0": None}


def test_a_variant_is_a_method_with_its_own_options_and_cells_report_accuracy_by_t(tmp_path):
    """variants: {decays: {method: single, learn_decays: true}} trains single with learned
    decays under its own name, compared with single; every cell reports its deployed accuracy
    at T' = 1..T, whose last value is the deployed accuracy."""
    out = tmp_path / "b"
    bench(BenchConfig(preset="digits-quick", train={"epochs": 1, "ternary_after": 0},
                      methods=["single", "decays"], weights=["ternary"], seeds=1,
                      variants={"decays": {"method": "single", "learn_decays": True,
                                           "decay_lr": 20.0}},
                      progress=False, out=str(out)))
    r = json.loads((out / "decays-ternary-s0" / "cell.json").read_text())
    assert r["train_method"] == "single" and r["options"] == {"learn_decays": True,
                                                               "decay_lr": 20.0}
    assert r["parity"] is True and r["epoch_seconds_median"] > 0
    cfg = (out / "decays-ternary-s0" / "run" / "config.yaml").read_text()
    assert "learn_decays: true" in cfg and "method: single" in cfg
    by_t = [float(a) for a in r["deployed_acc_by_t"].split("/")]
    assert len(by_t) == 5 and by_t[-1] == round(r["deployed_acc"], 2)   # digits-quick: T = 5
    tables = (out / "tables.md").read_text()
    assert "## Accuracy at fewer time steps" in tables
    assert "decays beats a single network (T-SNN)" in tables
    with pytest.raises(TnaError, match="variants: 'kd' is a method's name"):
        BenchConfig(methods=["single"], variants={"kd": {"method": "kd"}})
    with pytest.raises(TnaError, match="variants: x: 'seed' is set per cell by the grid"):
        BenchConfig(methods=["single"], variants={"x": {"method": "single", "seed": 3}})


def test_weights_per_method_and_reusing_another_benchs_cells(tiny, tmp_path):
    """weights: {method: [modes]} gives each method its own modes; reuse copies the finished
    cells of a bench with the same training settings instead of training them again."""
    out = tmp_path / "b"
    cfg = BenchConfig(**{**TINY, "methods": ["tna", "single", "self-distill"],
                         "weights": {"tna": ["ternary"], "single": ["ternary"],
                                     "self-distill": ["fp"]},
                         "seeds": [0], "reuse": str(tiny), "out": str(out)})
    assert [c.name for c in cells(cfg)] == ["tna-ternary-a0.0001-s0", "single-ternary-s0",
                                            "self-distill-fp-s0"]
    bench(cfg)
    reused = json.loads((out / "single-ternary-s0" / "cell.json").read_text())
    assert reused["reused_from"] == str(tiny)
    assert reused["deployed_acc"] == json.loads(
        (tiny / "single-ternary-s0" / "cell.json").read_text())["deployed_acc"]
    trained = json.loads((out / "self-distill-fp-s0" / "cell.json").read_text())
    assert "reused_from" not in trained and trained["parity"] is True
    other = BenchConfig(**{**TINY, "train": {"epochs": 2, "ternary_after": 1},
                           "reuse": str(tiny), "out": str(tmp_path / "c")})
    with pytest.raises(TnaError, match="reuse = .*: its cells were trained with other settings "
                                       r"\(train\)"):
        bench(other)
    with pytest.raises(TnaError, match="weights = .*give weight modes for every method \\(tna\\)"):
        BenchConfig(methods=["single", "tna"], weights={"single": ["fp"]})
