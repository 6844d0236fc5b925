"""Training methods as plug-ins (tna.train.methods): the registry, composition, the new loss
terms (self-distill, tasg, kd's KL) and a throw-away method that trains, exports and benches
without touching any file but the test's own."""
import csv
import json
import math

import pytest
import torch
from click.testing import CliRunner

from tna.cli import cli
from tna.errors import TnaError
from tna.train import TrainConfig
from tna.train.loop import loss_terms
from tna.train.methods import METHODS, Outputs, parse_method, register_method, unregister_method
from tna.train.methods.base import kl_to
from tna.train.methods.self_distill import pairs, self_distill_kl
from tna.train.methods.tasg import directed_pairs, tasg_kl

LABELS = torch.tensor([0, 2])


def kl_by_hand(teacher, student, tau):
    """Mean over rows of sum_c p_c (log p_c - log q_c), p = softmax(teacher/tau), q of student."""
    total = 0.0
    for rt, rs in zip(teacher, student):
        zt = sum(math.exp(v / tau) for v in rt)
        zs = sum(math.exp(v / tau) for v in rs)
        for a, b in zip(rt, rs):
            p, q = math.exp(a / tau) / zt, math.exp(b / tau) / zs
            total += p * (math.log(p) - math.log(q))
    return total / len(teacher)


def steps_by_confidence():
    """(N=2, classes=3, T=3) readouts: step 0 is the most confident, step 2 the least."""
    s = torch.zeros(2, 3, 3, dtype=torch.float64)
    s[:, :, 0] = torch.tensor([[6.0, 0.0, 0.0], [0.0, 0.0, 6.0]])     # peaked
    s[:, :, 1] = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 2.0]])
    s[:, :, 2] = torch.tensor([[0.3, 0.0, 0.1], [0.0, 0.2, 0.1]])     # nearly flat
    return s


# ------------------------------------------------------------------ registry and composition
def test_every_method_is_registered_and_described():
    assert {"single", "tna", "kd", "kd-ce", "self-distill", "tasg"} <= set(METHODS)
    for m in METHODS.values():
        assert m.source and m.nets in ("none", "twin", "teacher")


@pytest.mark.parametrize("name, match", [
    ("tna+kd", "each train an extra network"),
    ("single+tna", "single combines with no other method"),
    ("self-distill+tna", "write it 'tna\\+self-distill'"),
    ("tna+tna", "twice"),
    ("tna+nope", "'nope' is not a method"),
])
def test_incompatible_combinations_are_refused_in_one_line(name, match):
    with pytest.raises(TnaError, match=match) as e:
        TrainConfig(method=name)
    assert "\n" not in str(e.value)


def test_composition_is_the_sum_of_both_methods_terms():
    torch.manual_seed(0)
    steps = torch.randn(4, 5, 3, dtype=torch.float64)
    twin = torch.randn(4, 5, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3])
    logits = steps.sum(-1)
    cfg = TrainConfig(method="tna+self-distill", alpha=0.5, sd_lambda=0.25)
    both = loss_terms(logits, y, twin, None, cfg.method, cfg.alpha, steps=steps, cfg=cfg)
    tna = loss_terms(logits, y, twin, None, "tna", 0.5)
    sd = loss_terms(logits, y, None, None, "self-distill", steps=steps,
                    cfg=TrainConfig(method="self-distill", sd_lambda=0.25))
    assert list(both) == ["ce_base", "ce_twin", "mse", "sd_kl", "loss"]   # one shared CE
    assert both["loss"].item() == pytest.approx(tna["loss"].item() + 0.25 * sd["sd_kl"].item(),
                                                rel=1e-12)


def test_self_distill_with_lambda_0_is_single():
    torch.manual_seed(1)
    steps = torch.randn(8, 10, 5)
    logits = steps.sum(-1)
    y = torch.randint(0, 10, (8,))
    sd = loss_terms(logits, y, steps=steps, cfg=TrainConfig(method="self-distill", sd_lambda=0.0))
    assert torch.equal(sd["loss"], loss_terms(logits, y, method="single")["loss"])


def test_options_are_fields_flags_and_keys():
    from tna.config import from_dict
    cfg = from_dict(TrainConfig, {"method": "self-distill", "sd-mode": "cascade",
                                  "kd_loss": "kl", "tasg_drop": 0.25})
    assert (cfg.sd_mode, cfg.kd_loss, cfg.tasg_drop) == ("cascade", "kl", 0.25)
    assert cfg.to_dict()["sd_mode"] == "cascade" and list(cfg.to_dict())[0] == "method"
    for bad, match in ((dict(sd_mode="best"), "sd_mode"), (dict(kd_loss="l1"), "kd_loss"),
                       (dict(tasg_drop=1.0), "tasg_drop"), (dict(kd_temperature=0.0),
                                                            "kd_temperature")):
        with pytest.raises(TnaError, match=match):
            TrainConfig(**bad)
    out = CliRunner().invoke(cli, ["train", "--help"], terminal_width=200).output
    for flag in ("--sd-mode", "--sd-lambda", "--sd-temperature", "--tasg-drop", "--tasg-weight",
                 "--kd-loss", "--kd-temperature", "--alpha", "--teacher"):
        assert flag in out
    for name in METHODS:
        assert f"  {name} " in out


# ------------------------------------------------------------------ self-distill
def test_self_distill_modes_pick_the_steps_by_confidence():
    s = steps_by_confidence()
    assert pairs(s, "strong2weak") == [(0, 2)]
    assert pairs(s, "weak2strong") == [(2, 0)]
    assert pairs(s, "cascade") == [(0, 1), (1, 2)]


@pytest.mark.parametrize("mode, teacher, student", [("strong2weak", 0, 2),
                                                     ("weak2strong", 2, 0)])
def test_self_distill_kl_by_hand_and_teacher_detached(mode, teacher, student):
    s = steps_by_confidence().requires_grad_()
    kl = self_distill_kl(s, mode, 2.0)
    expect = kl_by_hand(s[..., teacher].tolist(), s[..., student].tolist(), 2.0)
    assert kl.item() == pytest.approx(expect, rel=1e-12)
    kl.backward()
    assert s.grad[..., teacher].abs().sum() == 0           # no gradient through the teacher
    assert s.grad[..., student].abs().sum() > 0
    assert s.grad[..., 1].abs().sum() == 0                 # nor into a step not in the pair


def test_self_distill_cascade_is_the_mean_of_its_chain():
    s = steps_by_confidence()
    expect = (kl_to(s[..., 0], s[..., 1], 2.0) + kl_to(s[..., 1], s[..., 2], 2.0)) / 2
    assert self_distill_kl(s, "cascade", 2.0).item() == pytest.approx(expect.item(), rel=1e-12)


def test_self_distill_with_one_step_adds_nothing():
    s = torch.randn(4, 3, 1, requires_grad=True)
    assert self_distill_kl(s, "strong2weak", 2.0).item() == 0.0


# ------------------------------------------------------------------ tasg
def test_tasg_pairs_both_directions_of_adjacent_steps():
    assert directed_pairs(3) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    assert directed_pairs(1) == []


def test_tasg_mean_over_kept_terms_and_teacher_detached():
    s = steps_by_confidence().requires_grad_()
    keep = [True, False, False, True]                     # 0 -> 1 and 2 -> 1
    kl = tasg_kl(s, 0.5, 2.0, keep)
    expect = (kl_by_hand(s[..., 0].tolist(), s[..., 1].tolist(), 2.0)
              + kl_by_hand(s[..., 2].tolist(), s[..., 1].tolist(), 2.0)) / 2
    assert kl.item() == pytest.approx(expect, rel=1e-12)
    kl.backward()
    assert s.grad[..., 0].abs().sum() == 0 and s.grad[..., 2].abs().sum() == 0   # teachers
    assert s.grad[..., 1].abs().sum() > 0
    assert tasg_kl(s, 0.5, 2.0, [False] * 4).item() == 0.0      # all dropped


def test_tasg_drop_is_random_from_the_cpu_generator_and_none_drawn_at_0():
    s = torch.randn(4, 3, 5)
    torch.manual_seed(3)
    a = tasg_kl(s, 0.5, 2.0)
    torch.manual_seed(3)
    assert torch.equal(a, tasg_kl(s, 0.5, 2.0))            # a resumed run draws the same
    state = torch.get_rng_state()
    tasg_kl(s, 0.0, 2.0)
    assert torch.equal(state, torch.get_rng_state())


# ------------------------------------------------------------------ kd with KL
def test_kd_kl_is_tau_squared_kl_and_does_not_reach_the_teacher():
    base = torch.tensor([[2.0, 1.0, 0.0], [0.5, -1.0, 3.0]], dtype=torch.float64,
                        requires_grad=True)
    teacher = torch.tensor([[3.0, 0.0, -1.0], [1.5, -1.0, 1.0]], dtype=torch.float64,
                           requires_grad=True)
    cfg = TrainConfig(method="kd-ce", teacher="t.pt", kd_loss="kl", kd_temperature=4.0,
                      alpha=0.5)
    terms = loss_terms(base, LABELS, None, teacher, cfg.method, cfg.alpha, cfg=cfg)
    kl = 16 * kl_by_hand(teacher.tolist(), base.tolist(), 4.0)
    assert set(terms) == {"ce_base", "kd_kl", "loss"}
    assert terms["kd_kl"].item() == pytest.approx(kl, rel=1e-12)
    assert terms["loss"].item() == pytest.approx(terms["ce_base"].item() + 0.5 * kl, rel=1e-12)
    terms["loss"].backward()
    assert teacher.grad is None and base.grad.abs().sum() > 0
    mse = loss_terms(base, LABELS, None, teacher, "kd", cfg=TrainConfig(method="kd",
                                                                        teacher="t.pt"))
    assert set(mse) == {"mse", "loss"}                      # the default is today's MSE


# ------------------------------------------------------------------ the model's steps
def test_per_step_readout_sums_to_the_logits():
    from tna.models.snn import build_model
    from tna.models.spec import make_spec
    spec = make_spec("16-out", (1, 8, 8), 10, readout="voltage", dropout=0.0)
    model = build_model(spec, seed=0)
    x = torch.randint(0, 16, (4, 1, 8, 8, 5)).float()
    for training in (False, True):
        model.train(training)
        steps = model(x, steps=True)
        assert steps.shape == (4, 10, 5)
        assert torch.allclose(steps.sum(-1), model(x), rtol=0, atol=1e-5)


# ------------------------------------------------------------------ the CLI
def test_tna_train_self_distill_learns_digits(tmp_path):
    out = tmp_path / "sd"
    result = CliRunner().invoke(cli, [
        "train", "--dataset", "digits", "--arch", "mlp", "--epochs", "2", "--method",
        "self-distill", "--sd-mode", "strong2weak", "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output
    res = json.loads((out / "result.json").read_text())
    assert res["method"] == "self-distill" and res["test_acc"] > 50      # chance: 10%
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"ce_base", "sd_kl", "loss"} <= set(row)


# ------------------------------------------------------------------ a throw-away method
@pytest.fixture
def throwaway():
    """A method registered in this file only: CE plus a small L2 term on the logits."""
    def terms(out, cfg):
        import torch.nn.functional as F
        return {"ce_base": (1, F.cross_entropy(out.logits, out.labels)),
                "l2_logits": (1e-3, out.logits.pow(2).mean())}
    register_method("throwaway", terms, label="Throw-away", marker="x", compare=True,
                    source="a test's own method")
    yield "throwaway"
    unregister_method("throwaway")


def test_a_throwaway_method_trains_exports_and_benches(tmp_path, throwaway):
    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(cli, ["train", "--config", "digits-quick", "--method", throwaway,
                                 "--epochs", "2", "--ternary-after", "1", "--limit", "400",
                                 "--no-progress", "--out", str(run)])
    assert result.exit_code == 0, result.output
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert "l2_logits" in row
    result = runner.invoke(cli, ["export", str(run), "--out", str(tmp_path / "t.net")])
    assert result.exit_code == 0, result.output
    bench_yaml = tmp_path / "bench.yaml"
    bench_yaml.write_text(
        "preset: digits-quick\ntrain: {epochs: 1, ternary_after: 0}\n"
        f"methods: [single, {throwaway}]\nweights: [ternary]\nseeds: 1\n"
        f"out: {tmp_path / 'bench'}\nprogress: false\n")
    result = runner.invoke(cli, ["bench", "--config", str(bench_yaml)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "bench" / "results.csv").open()))
    assert {r["method"] for r in rows} == {"single", throwaway}
    mine = next(r for r in rows if r["method"] == throwaway)
    assert mine["parity"] == "True" and float(mine["deployed_acc"]) > 30
    tables = (tmp_path / "bench" / "tables.md").read_text()
    assert "Throw-away (PyTorch)" in tables and "Throw-away beats a single network" in tables
    assert (tmp_path / "bench" / "memory.png").read_bytes()[:4] == b"\x89PNG"


def test_parse_method_gives_the_registered_methods():
    assert [m.name for m in parse_method("tna+tasg")] == ["tna", "tasg"]
    assert Outputs(logits=1, labels=2).steps is None


def test_a_run_saved_before_the_method_options_existed_resumes(tmp_path):
    """Its checkpoint and config.yaml lack the options' keys: they had their defaults."""
    import yaml

    from tna import checkpoint as ckpt
    from tna.train import train
    from tna.train.methods import option_classes
    cfg = TrainConfig(dataset="digits", arch="16-8-out", batch_size=32, limit=96, epochs=1,
                      method="single", weights="fp", progress=False, out=str(tmp_path / "run"))
    train(cfg)
    options = {f for c in option_classes() for f in c.__dataclass_fields__}
    for name in ("checkpoint.pt", "best.pt"):
        state = ckpt.load(tmp_path / "run" / name)
        state = {k: v for k, v in state.items() if k not in ("format", "version", "path")}
        state["config"] = {k: v for k, v in state["config"].items() if k not in options}
        ckpt.save(state, tmp_path / "run" / name)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(
        {k: v for k, v in saved.items() if k not in options}))
    result = CliRunner().invoke(cli, ["train", "--resume", str(tmp_path / "run"), "--epochs",
                                      "2"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "result.json").read_text())["epochs"] == 2
