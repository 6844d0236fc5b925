"""What a bench folder reports: results.csv, tables.md (the paper's Tables 1 and 2, and a
paired test per claim) and PNG plots (the alpha sweep of Fig. 2, methods as in Fig. 3, accuracy
against weight memory)."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from tna.atomic import atomic_path, write_text
from tna.bench.grid import read_metrics
from tna.bench.stats import mean_std, paired
from tna.console import count
from tna.train.methods.base import (compared, has_role, label, marker, ordered, paper_accuracy,
                                    paper_rivals, with_role)

COLUMNS = ["cell", "method", "weights", "alpha", "seed", "train_method", "teacher", "dataset",
           "arch", "epochs", "ternary_after", "torch_test_acc", "best_val_acc", "deployed_acc",
           "reference_acc", "deployed_samples", "parity", "deployed_acc_by_t", "train_minutes",
           "cell_minutes", "hardware", "load_mean", "load_max", "cores",
           "spikes_per_inference", "synops_per_inference", "weight_kib_netx",
           "weight_kib_needed", "loihi2_cores", "loihi2_chips", "loihi2_uj_low",
           "loihi2_uj_high", "warnings"]

MODE_NAMES = {"fp": "FP", "ternary": "T-SNN", "binary": "B-SNN"}
# Methods are named, ordered, marked and grouped by their declarations (tna.train.methods): the
# 'baseline' (single) and 'main' (TNA) roles make Table 1, the alpha sweep and the paper's claims;
# the paper's rivals (kd, kd-ce) its Fig. 3 claims; methods with compare=True are tested against
# both.


def _trains(r: dict) -> str:
    """The training method of a record: a variant's (train_method), else its method."""
    return r.get("train_method") or r["method"]


def _roles() -> tuple:
    """(baseline, main): the single network's and TNA's method names."""
    return with_role("baseline"), with_role("main")


def _alpha_for(method: str, a0):
    """The alpha a table picks cells of `method` by: a0 for TNA and combinations with it."""
    return a0 if has_role(method, "main") else None


def write_csv(records: list, out: Path) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in records:
        w.writerow(r)
    write_text(out / "results.csv", buf.getvalue())
    return out / "results.csv"


def _by(records, method, weights, alpha=None, key="torch_test_acc") -> dict:
    """seed -> value of the cells of (method, weights[, alpha])."""
    return {r["seed"]: r[key] for r in records if r["method"] == method and
            r["weights"] == weights and (alpha is None or r["alpha"] == alpha)
            and r.get(key) is not None}


def _cell(values: dict) -> str:
    if not values:
        return "–"
    m, sd = mean_std(list(values.values()))
    return f"{m:.2f} ± {sd:.2f} ({len(values)})"


def _diff(a: dict, b: dict, margin=0.0) -> tuple:
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None, "–"
    p = paired([a[s] for s in seeds], [b[s] for s in seeds])
    ci = "" if p.n < 2 else f" [{p.low:+.2f}, {p.high:+.2f}]"
    return p, f"{p.mean:+.2f}{ci}"


def main_alpha(records):
    """The alpha the tables use for TNA: the most common one (the first on a tie)."""
    main = with_role("main")
    alphas = [r["alpha"] for r in records if r["method"] == main]
    return max(dict.fromkeys(alphas), key=alphas.count) if alphas else None


def claims(records) -> list:
    """(claim, a, b, margin, what the margin means) for every claim the grid can test."""
    a0 = main_alpha(records)
    single, tna = _roles()
    present = {(r["method"], r["weights"]) for r in records}
    out = []

    def add(text, a, b, margin=0.0, note=""):
        if a in present and b in present:       # both sides were trained in this folder
            out.append((text, a, b, margin, note))

    for w in ("fp", "ternary", "binary"):
        add(f"TNA beats a single network ({MODE_NAMES[w]}, Table 1)", (tna, w), (single, w))
    add("T-SNN beats B-SNN (single networks)", (single, "ternary"), (single, "binary"))
    add("T-SNN approaches full precision: within 1 point of FP (single networks)",
        (single, "ternary"), (single, "fp"), -1.0, "margin −1.0 point")
    add("TNA T-SNN matches or beats the FP single network (Table 2): no more than 0.5 points "
        "below", (tna, "ternary"), (single, "fp"), -0.5, "margin −0.5 point")
    for w in ("fp", "ternary", "binary"):
        for rival, called in paper_rivals():
            add(f"TNA beats {called} ({MODE_NAMES[w]}, Fig. 3)", (tna, w), (rival, w))
    for m in ordered({r["method"] for r in records
                      if compared(_trains(r)) or r["method"] != _trains(r)}):   # variants too
        for w in ("fp", "ternary", "binary"):
            add(f"{label(m)} beats a single network ({MODE_NAMES[w]})", (m, w), (single, w))
            if m != tna:
                add(f"{label(m)} beats TNA ({MODE_NAMES[w]})", (m, w), (tna, w))
            if m != single and (single, w) not in present and w != "ternary":
                # no single net at these weights (a kd B-SNN grid): against the T-SNNs, which
                # asks whether the method buys back what fewer weight bits cost
                add(f"{label(m)} {MODE_NAMES[w]} beats a single T-SNN", (m, w),
                    (single, "ternary"))
                if m != tna:
                    add(f"{label(m)} {MODE_NAMES[w]} beats TNA T-SNN", (m, w),
                        (tna, "ternary"))
    return [(t, a, b, m, n, a0) for t, a, b, m, n in out]


def sweep_mode(records) -> str | None:
    """The weight mode of the α sweep: the one whose tna cells have the most alphas (fp first
    on a tie); None without tna cells."""
    tna = [r for r in records if r["method"] == with_role("main")]
    modes = list(dict.fromkeys(r["weights"] for r in tna))
    if not modes:
        return None
    return max(modes, key=lambda m: (len({r["alpha"] for r in tna if r["weights"] == m}),
                                     m == "fp"))


def _cost_table(records) -> list:
    """Per method and weight mode: deployed accuracy, parity, and what training cost (minutes
    per epoch, with the threads and machine load it ran under: TNA pays for its twin, kd for a
    teacher's forward pass). The median seconds per epoch leave out epochs slowed by another job
    on the machine, which the mean minutes keep."""
    groups: dict = {}
    for r in records:
        groups.setdefault((r["method"], r["weights"]), []).append(r)
    if len(groups) < 2:
        return []
    lines = ["", "## Training cost per method", "",
             "| method | weights | seeds | deployed | parity | training min / epoch | "
             "median s / epoch | ran on | load (1-min average, mean) | reused from |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    keys = ordered(list({k[0] for k in groups}))
    for (method, mode), rs in sorted(groups.items(), key=lambda kv: (keys.index(kv[0][0]),
                                                                    kv[0][1])):
        acc = [r["deployed_acc"] for r in rs if r.get("deployed_acc") is not None]
        m, sd = mean_std(acc) if acc else (None, None)
        per_epoch: dict = {}     # by what the cell ran on: minutes compare only within one
        median: dict = {}
        for r in rs:
            if r.get("train_minutes") and r.get("epochs"):
                per_epoch.setdefault(r.get("hardware") or "–", []).append(
                    r["train_minutes"] / r["epochs"])
            if r.get("epoch_seconds_median"):
                median.setdefault(r.get("hardware") or "–", []).append(r["epoch_seconds_median"])
        ran_on = sorted(set(per_epoch) | set(median)) or sorted(
            {r["hardware"] for r in rs if r.get("hardware")})
        load = [r["load_mean"] for r in rs if r.get("load_mean") is not None]
        reused = sorted({Path(r["reused_from"]).name for r in rs if r.get("reused_from")})
        lines.append(
            f"| {label(method)} | {MODE_NAMES.get(mode, mode)} | {len(rs)} | "
            + ("–" if m is None else f"{m:.2f}" if len(acc) == 1 else f"{m:.2f} ± {sd:.2f}")
            + " | "
            + f"{sum(bool(r.get('parity')) for r in rs)}/{len(rs)} exact | "
            + _by_hardware(per_epoch, ran_on, "{:.2f}") + " | "
            + _by_hardware(median, ran_on, "{:.0f}") + " | "
            + (" / ".join(ran_on) or "–")
            + " | " + (f"{sum(load) / len(load):.2f}" if load else "–") + " | "
            + (", ".join(reused) or "–") + " |")
    return lines


def _by_hardware(values: dict, ran_on: list, fmt: str) -> str:
    """The mean of each hardware's values, '/'-separated in ran_on's order ("–" for none)."""
    if not values:
        return "–"
    return " / ".join(fmt.format(sum(v) / len(v)) if (v := values.get(h)) else "–"
                      for h in ran_on)


def _timesteps_table(records) -> list:
    """Deployed accuracy at T' = 1..T steps (emulator), mean over seeds, per method and mode:
    what a net keeps when Loihi runs it for fewer steps (less latency and energy)."""
    rows: dict = {}
    for r in records:
        if r.get("deployed_acc_by_t"):
            accs = [float(a) for a in str(r["deployed_acc_by_t"]).split("/")]
            rows.setdefault((r["method"], r["weights"]), []).append(accs)
    if not rows:
        return []
    steps = max(len(a) for v in rows.values() for a in v)
    lines = ["", "## Accuracy at fewer time steps (deployed, emulator; `tna run --timesteps T'`)",
             "", "| method | weights | seeds | " + " | ".join(f"T'={t}" for t in
                                                             range(1, steps + 1)) + " |",
             "|---|---|---|" + "---|" * steps]
    for (method, mode), runs in sorted(rows.items(), key=lambda kv: (
            ordered(list({k[0] for k in rows})).index(kv[0][0]), kv[0][1])):
        means = [sum(a[t] for a in runs if len(a) > t) / sum(len(a) > t for a in runs)
                 for t in range(steps)]
        lines.append(f"| {label(method)} | {MODE_NAMES.get(mode, mode)} | {len(runs)} | "
                     + " | ".join(f"{m:.2f}" for m in means) + " |")
    without = sorted({f"{label(r['method'])} {MODE_NAMES.get(r['weights'], r['weights'])}"
                      for r in records if not r.get("deployed_acc_by_t")})
    if without:      # cells reused from a bench that predates the column
        lines += ["", f"Not measured for {', '.join(without)}: cells finished before tna "
                  "recorded accuracy by T' (reused ones); rerun them to add theirs."]
    return lines


def _alpha_table(records, out_dir: Path | None) -> list:
    """The α sweep as numbers: per α, deployed accuracy and the last epoch's validation CE and
    matching loss (mean over seeds); empty unless some weight mode has two or more alphas."""
    mode = sweep_mode(records)
    main = with_role("main")
    tna = [r for r in records if r["method"] == main and r["weights"] == mode]
    alphas = sorted({r["alpha"] for r in tna}, reverse=True)
    if len(alphas) < 2:
        return []
    lines = ["", f"## α sweep (TNA, {MODE_NAMES[mode]}; the paper's Fig. 2, `alpha_sweep.png`)",
             "", "| α | PyTorch | deployed | validation CE (base), last epoch | matching loss "
             "(validation logit MSE), last epoch |", "|---|---|---|---|---|"]
    for alpha in alphas:
        runs = [_metrics(out_dir, r["cell"]) if out_dir else [] for r in tna
                if r["alpha"] == alpha]
        last = [m[-1] for m in runs if m]        # each seed's last epoch

        def mean(key, last=last):
            vals = [m[key] for m in last if m.get(key) is not None]
            return f"{sum(vals) / len(vals):.3f}" if vals else "–"
        lines.append(f"| {alpha:g} | {_cell(_by(records, main, mode, alpha))} | "
                     f"{_cell(_by(records, main, mode, alpha, key='deployed_acc'))} | "
                     f"{mean('val_ce')} | {mean('val_mse')} |")
    return lines


def tables(records, dataset: str, out_dir: Path | None = None, note: str = "") -> str:
    a0 = main_alpha(records)
    single, tna = _roles()
    modes = [m for m in ("fp", "ternary", "binary") if any(r["weights"] == m for r in records)]
    methods = ordered({r["method"] for r in records})
    paper = dataset == "fashion-mnist"
    cfg = records[0]
    lines = [f"# Bench: {dataset}, {cfg['arch']}, {count(cfg['epochs'], 'epoch')} "
             f"({cfg['hardware']})", ""] + ([f"**{note}**", ""] if note else []) + [
             "Accuracy in % on the full test split unless stated: mean ± std over seeds "
             "(seeds). *PyTorch*: the trained base in PyTorch; *deployed*: the exported netx file "
             "on tna's emulator, checked spike for spike against the slayer reference. "
             "Differences are paired by seed, with their 95% CI (Student's t).", ""]
    loads = [r["load_mean"] for r in records if r.get("load_mean") is not None]
    if loads:
        lines += [f"Machine load while the cells ran (1-minute load average, mean over each "
                  f"cell, {records[0].get('cores') or '?'} cores): {min(loads):.1f} to "
                  f"{max(loads):.1f}; a cell alone on the machine shows about its own thread "
                  f"count, so minutes of cells above that were measured under load "
                  f"(`results.csv`: load_mean, load_max). Accuracy does not depend on load.", ""]
    if a0 is not None:
        lines += [f"TNA cells use α = {a0:g} in the tables below.", ""]
    lines += ["## Table 1: single network vs TNA", "",
              "| weights | single (PyTorch) | TNA (PyTorch) | TNA − single | single (deployed) "
              "| TNA (deployed) |" + (" paper single | paper TNA |" if paper else ""),
              "|---|---|---|---|---|---|" + ("---|---|" if paper else "")]
    for w in modes:
        s, t = _by(records, single, w), _by(records, tna, w, a0)
        row = [MODE_NAMES[w], _cell(s), _cell(t), _diff(t, s)[1],
               _cell(_by(records, single, w, key="deployed_acc")),
               _cell(_by(records, tna, w, a0, key="deployed_acc"))]
        if paper:
            row += [_paper(single, w), _paper(tna, w)]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "## Table 2: full precision, binary and ternary, without and with TNA", "",
              "| network | " + " | ".join(f"{label(m)} (PyTorch) | {label(m)} "
                                           f"(deployed)" for m in methods)
              + (" | paper (single / TNA)" if paper else "") + " | parity | weight memory KiB "
              "(at the values' bits / as unmodified netx loads) | Loihi 2 cores, chips and "
              "dynamic µJ per inference (estimate) |",
              "|---|" + "---|---|" * len(methods) + ("---|" if paper else "") + "---|---|---|"]
    for w in modes:
        row = [MODE_NAMES[w]]
        for m in methods:
            alpha = _alpha_for(m, a0)
            row += [_cell(_by(records, m, w, alpha)),
                    _cell(_by(records, m, w, alpha, key="deployed_acc"))]
        if paper:
            row.append(f"{_paper(single, w)} / {_paper(tna, w)}")
        rs = [r for r in records if r["weights"] == w]
        exact = sum(bool(r["parity"]) for r in rs)
        row.append(f"{exact}/{len(rs)} exact")
        row.append(f"{rs[0]['weight_kib_needed']:.1f} / {rs[0]['weight_kib_netx']:.1f}")
        row.append(_loihi2_cell(rs))
        lines.append("| " + " | ".join(row) + " |")
    lines += _claims_table(records)
    lines += _cost_table(records)
    lines += _timesteps_table(records)
    lines += _alpha_table(records, out_dir)
    if paper:
        lines += ["", "Paper: Deckers et al., Fashion-MNIST, CIFARNet-style net, 250 epochs "
                      "(ternary from 150); our budgets are far smaller, see the header."]
    return "\n".join(lines) + "\n"


def _loihi2_cell(rs) -> str:
    """Cores and chips (the same for every cell of a weight mode and net), and the range of
    the cells' dynamic energy per inference; '–' for cells run before the estimate existed."""
    est = [r for r in rs if r.get("loihi2_cores") is not None]
    if not est:
        return "–"
    lo, hi = min(r["loihi2_cores"] for r in est), max(r["loihi2_cores"] for r in est)
    chips = max(r["loihi2_chips"] for r in est)
    text = (f"{lo}" if lo == hi else f"{lo}–{hi}") + f" cores, {chips} chip" + \
        ("s" if chips > 1 else "")
    lows = [r["loihi2_uj_low"] for r in est if r.get("loihi2_uj_low") is not None]
    highs = [r["loihi2_uj_high"] for r in est if r.get("loihi2_uj_high") is not None]
    if lows and highs:
        text += f", {min(lows):.3g}–{max(highs):.3g} µJ"
    return text


def _claims_table(records) -> list:
    """The paper's claims, each a paired difference over seeds with its 95% CI and verdict."""
    lines = ["", "## The paper's claims, tested", "",
             "Verdict: *holds* when the 95% CI of the paired difference lies above the margin, "
             "*contradicted* when it lies below, otherwise *not shown*.", "",
             "| claim | difference, PyTorch [95% CI] | verdict | difference, deployed | verdict |",
             "|---|---|---|---|---|"]
    for text, a, b, margin, note, alpha in claims(records):
        row = [text + (f" ({note})" if note else "")]
        for key in ("torch_test_acc", "deployed_acc"):
            va = _by(records, a[0], a[1], _alpha_for(a[0], alpha), key)
            vb = _by(records, b[0], b[1], _alpha_for(b[0], alpha), key)
            p, txt = _diff(va, vb)
            row += [txt, p.verdict(margin) if p else "–"]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _paper(method: str, weights: str) -> str:
    v = paper_accuracy(method, weights)
    return "–" if v is None else f"{v:.2f}"


def _metrics(out: Path, cell: str) -> list:
    return read_metrics(out / cell / "run")


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def plot_alpha_sweep(records, out: Path) -> Path | None:
    """Fig. 2: per alpha, base CE, matching loss and accuracy per epoch, train and validation
    (the mean over seeds of the tna cells of the weight mode with the most alphas)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    tna = [r for r in records if r["method"] == with_role("main")]
    if not tna:
        return None
    mode = sweep_mode(records)
    alphas = sorted({r["alpha"] for r in tna if r["weights"] == mode}, reverse=True)
    if len(alphas) < 2:            # one alpha is no sweep: the lines would say nothing
        return None
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    panels = (("ce_base", "val_ce", "cross-entropy (base)"), ("mse", "val_mse", "matching loss "
              "(logit MSE)"), ("train_acc", "val_acc", "accuracy (%)"))
    for i, alpha in enumerate(alphas):
        runs = [_metrics(out, r["cell"]) for r in tna if r["weights"] == mode
                and r["alpha"] == alpha]
        runs = [m for m in runs if m]
        if not runs:
            continue
        n = min(len(m) for m in runs)
        epochs = list(range(1, n + 1))
        color = f"C{i}"
        for ax, (train_key, val_key, title) in zip(axes, panels):
            for key, style in ((train_key, "-"), (val_key, "--")):
                if all(key in m[0] for m in runs):
                    ys = [sum(m[e][key] for m in runs) / len(runs) for e in range(n)]
                    ax.plot(epochs, ys, style, color=color, label=f"α={alpha:g} "
                            f"{'train' if style == '-' else 'val'}")
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)
    axes[2].legend(fontsize=7)
    fig.suptitle(f"TNA α sweep ({MODE_NAMES[mode]}, mean over seeds; solid train, dashed val)")
    path = out / "alpha_sweep.png"
    _save(fig, path)
    return path


def plot_methods(records, out: Path) -> Path:
    """Fig. 3: TNA vs KD vs KD+CE vs single (and any other method), per weight mode (mean ±
    std over seeds); TNA last, as in the paper."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    a0 = main_alpha(records)
    modes = [m for m in ("fp", "ternary", "binary") if any(r["weights"] == m for r in records)]
    main = with_role("main")
    methods = sorted(ordered({r["method"] for r in records}), key=lambda m: m == main)
    fig, ax = plt.subplots(figsize=(2 + 1.8 * len(modes), 4))
    width = 0.8 / len(methods)
    for j, m in enumerate(methods):       # points, not bars: the axis need not start at 0
        for i, w in enumerate(modes):
            vals = list(_by(records, m, w, _alpha_for(m, a0)).values())
            if not vals:
                continue
            mu, sd = mean_std(vals)
            x = i + j * width
            ax.errorbar([x], [mu], yerr=[sd], fmt="o", color=f"C{j}", capsize=4,
                        label=label(m) if i == 0 else None)
            ax.scatter([x] * len(vals), vals, s=8, color=f"C{j}", alpha=0.4)
    ax.set_xticks([i + width * (len(methods) - 1) / 2 for i in range(len(modes))])
    ax.set_xticklabels([MODE_NAMES[w] for w in modes])
    ax.set_ylabel("test accuracy (%), PyTorch (axis zoomed)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("methods: mean ± std over seeds, dots = seeds", fontsize=9)
    path = out / "methods.png"
    _save(fig, path)
    return path


def plot_memory(records, out: Path) -> Path:
    """Deployed accuracy against the weight memory the values need, per cell."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    colors = {"fp": "C0", "ternary": "C1", "binary": "C2"}
    seen = set()
    for r in records:
        if r.get("deployed_acc") is None:
            continue
        name = f"{label(r['method'])} {MODE_NAMES[r['weights']]}"
        ax.scatter(r["weight_kib_needed"], r["deployed_acc"], marker=marker(_trains(r)),
                   color=colors[r["weights"]], label=None if name in seen else name)
        seen.add(name)
    kib = [r["weight_kib_needed"] for r in records if r.get("deployed_acc") is not None]
    if kib and max(kib) > 10 * min(kib):      # a log axis only where it spans decades
        from matplotlib.ticker import ScalarFormatter
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(ScalarFormatter())
    ax.set_xlabel("weight memory (KiB, at the bits the values need)")
    ax.set_ylabel("deployed test accuracy (%)")
    ax.legend(fontsize=7)
    path = out / "memory.png"
    _save(fig, path)
    return path


def write_report(records: list, out: Path, note: str = "") -> list:
    """results.csv, tables.md and the plots; returns the paths written."""
    records = sorted(records, key=lambda r: (r["method"], r["weights"], r["alpha"] or 0,
                                             r["seed"]))
    write_text(out / "tables.md", tables(records, records[0]["dataset"], out, note))
    paths = [write_csv(records, out), out / "tables.md"]
    paths += [p for p in (plot_alpha_sweep(records, out), plot_methods(records, out),
                          plot_memory(records, out)) if p]
    return paths
