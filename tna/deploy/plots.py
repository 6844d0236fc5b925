"""Pictures of a `tna run`: what the deployed net predicts (a confusion matrix) and what it
does (one sample's spikes per layer over time, the reference against the deployed backend).

matplotlib is imported inside the functions (Agg: no display needed).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tna.atomic import atomic_path


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def confusion_png(matrix: np.ndarray, class_names: list, title: str, path) -> Path:
    """The confusion matrix (rows: true class, columns: predicted), counts in the cells and
    each class's accuracy on its row label."""
    plt = _pyplot()
    n = len(matrix)
    names = list(class_names) if len(class_names) == n else [str(i) for i in range(n)]
    rows = matrix.sum(1)
    acc = np.where(rows > 0, 100.0 * np.diag(matrix) / np.maximum(rows, 1), np.nan)
    size = max(4.0, 0.55 * n + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    shown = matrix / np.maximum(rows[:, None], 1)
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if shown[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), [f"{c} ({a:.1f}%)" for c, a in zip(names, acc)], fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (its accuracy)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    fig.tight_layout()
    return _save(fig, path)


def raster_png(layers: list, title: str, path, class_names=(), label: int | None = None,
               predicted: int | None = None) -> Path:
    """One sample's spikes per layer over its T aligned steps.

    layers: (name, reference spikes (neurons, T) or None, backend spikes or None, backend
    name); a backend that did not read a layer (Lava reads the output layer only) shows the
    reference alone there. A name ending in 'voltage' holds v (neurons, T) instead: a
    voltage readout, drawn as one line per output neuron with a legend of the classes
    (`class_names`, else their numbers). The readout panel (the last) names the sample's true
    class `label` and the backend's `predicted` class, when given.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(layers), figsize=(3.0 * len(layers) + 1, 4.2),
                             squeeze=False)
    readout = _readout_title(class_names, label, predicted)
    for k, (ax, (name, ref, other, who)) in enumerate(zip(axes[0], layers)):
        last = k == len(layers) - 1
        if name.endswith("voltage"):
            _voltage(ax, name, ref, other, who, class_names, readout if last else "")
            continue
        base = ref if ref is not None else other
        steps = base.shape[-1]
        if ref is not None:
            n, t = np.nonzero(ref)
            ax.scatter(t, n, s=14, marker="o", facecolors="none", edgecolors="black",
                       linewidths=0.7, label="reference")
        if other is not None:
            n, t = np.nonzero(other)
            ax.scatter(t, n, s=5, marker="x", color="tab:red", linewidths=0.7, label=who)
        if ref is None or other is None:      # say so: a missing x is no disagreement
            same = f"\n({who if other is None else 'the reference'} does not read this layer)"
        else:
            same = (" (identical)" if np.array_equal(ref, other) else
                    f" ({int((ref != other).sum())} differ)")
        ax.set_title(f"{name}: {int(base.sum())} spikes{same}" + (readout if last else ""),
                     fontsize=8)
        ax.set_xlabel("time step")
        ax.set_xticks(range(steps))
        ax.set_xlim(-0.5, steps - 0.5)
        ax.set_ylim(-0.5, base.shape[0] - 0.5)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("neuron (flattened C, H, W)")
    handles, labels = axes[0][-1].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.93, 0.95))
    return _save(fig, path)


def _class_name(class_names, k: int) -> str:
    return str(class_names[k]) if 0 <= k < len(class_names) else str(k)


def _readout_title(class_names, label, predicted) -> str:
    """'\ntrue: Coat, predicted: Shirt' (either part only when known)."""
    parts = ([f"true: {_class_name(class_names, label)}"] if label is not None else []) + \
        ([f"predicted: {_class_name(class_names, predicted)}"] if predicted is not None else [])
    return "\n" + ", ".join(parts) if parts else ""


def _voltage(ax, name, ref, other, who, class_names=(), readout: str = "") -> None:
    """A voltage readout (it never spikes): each output neuron's v over time, a legend of
    the classes beside the panel."""
    from matplotlib.lines import Line2D
    shown = ref if ref is not None else other
    steps = shown.shape[-1]
    for k, v in enumerate(ref if ref is not None else []):
        ax.plot(range(steps), v, "-", color=f"C{k % 10}", lw=1.2)
    for k, v in enumerate(other if other is not None else []):
        ax.plot(range(steps), v, "x", color=f"C{k % 10}", ms=4)
    same = "" if ref is None or other is None else \
        (" (identical)" if np.array_equal(ref, other) else " (differs)")
    ax.set_title(f"{name}{same}{readout}", fontsize=8)
    ax.set_xlabel("time step")
    ax.set_xticks(range(steps))
    ax.set_ylabel(f"v, Lava units (reference -, {who} x)", fontsize=7)
    ax.tick_params(labelsize=7)
    if len(shown) > 10:          # colours repeat after 10: the title names the classes
        return
    # proxies, not labels on the lines: the figure's reference/backend legend stays as it is
    classes = [Line2D([], [], color=f"C{k}", lw=1.2, label=_class_name(class_names, k))
               for k in range(len(shown))]
    ax.legend(handles=classes, title="class", fontsize=6, title_fontsize=7,
              loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)


def _save(fig, path) -> Path:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)
