"""NIR -> netx: foreign graphs quantised by the stated rule; malformed files get one-line errors."""
import subprocess
import sys

import h5py
import nir
import numpy as np
import pytest

from tna import netx
from tna.errors import TnaError
from tna.nir import ImportConfig
from tna.nir.read import read_graph, to_netx


def write(graph, path):
    nir.write(path, graph)
    return path


def test_foreign_graph_imports_by_the_rule(build, tmp_path, call):
    path = write(build.foreign_graph(), tmp_path / "g.nir")
    code, out, err = call("import", path, "--dt", build.dt, "--timesteps", 12, "--out",
                          tmp_path / "g.net")
    assert code == 0, err
    assert "vThMant" in err and "8-bit weights off by" in err
    model = netx.read_net(tmp_path / "g.net")
    assert netx.validate(model) == []
    assert [layer.type for layer in model.layers] == ["input", "conv", "flatten", "dense", "dense"]
    conv, hidden, out_layer = model.layers[1], model.layers[3], model.layers[4]
    # decays: round(4096 * dt / tau) = round(4096 * (1 - alpha)), one per layer
    assert (conv.neuron.i_decay, conv.neuron.v_decay) == (1229, 410)
    assert (hidden.neuron.i_decay, hidden.neuron.v_decay) == (819, 205)
    # weights on slayer's 8-bit grid, the largest normalised weight at the top of it
    for layer in (conv, hidden, out_layer):
        w = layer.weight
        assert np.all(w % 2 == 0) and w.min() >= -256 and w.max() <= 254
        assert np.abs(w).max() >= 250
    assert out_layer.neuron.vth_mant == netx.NON_SPIKING_VTH_MANT        # CubaLI: readout
    meta = model.meta
    assert meta.readout == "voltage" and meta.timesteps == 12 and meta.input_shape == [2, 8, 8]
    assert meta.extra["source"] == "nir" and not meta.extra["nir_import"]["exact"]


def test_per_neuron_thresholds_fold_into_the_weights(build):
    """k = floor(254 / max |W / theta|) is the threshold; each row is scaled by k / theta."""
    graph = build.foreign_graph()
    model, conv = to_netx(graph, ImportConfig(dt=build.dt, timesteps=12))
    fc1, lif2 = graph.nodes["fc1"], graph.nodes["lif2"]
    norm = fc1.weight / lif2.v_threshold[:, None]        # g_syn * g_mem = 1 in snnTorch's form
    k = np.floor(254 / np.abs(norm).max())
    hidden = model.layers[3]
    assert hidden.neuron.vth_mant == k
    assert np.abs(hidden.weight - k * norm).max() <= 1 + 1e-9          # nearest even integer
    assert conv.layers[1].weight_error <= 1 / k + 1e-12


def test_exact_values_are_taken_exactly(build, tmp_path):
    """A foreign graph whose values are Loihi's already (multiples of 1/64, decays of 1/4096)."""
    p = build.snn_params((4,), 1 - 512 / 4096, 1 - 256 / 4096, 0.5, dt=1.0)
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([6])}),
        nir.Linear(weight=np.arange(-12, 12).reshape(4, 6) / 32.0), nir.CubaLIF(**p))
    model, conv = to_netx(graph, ImportConfig(dt=1.0, timesteps=3))
    assert conv.exact
    layer = model.layers[1]
    assert np.array_equal(layer.weight, np.arange(-12, 12).reshape(4, 6) * 2.0)
    assert (layer.neuron.i_decay, layer.neuron.v_decay, layer.neuron.vth_mant) == (512, 256, 32)
    assert model.meta.readout == "spike"


def test_pools_and_other_neurons(build):
    """SumPool2d / AvgPool2d become depthwise convs; LIF / IF have a one-step current."""
    dt = 1e-3
    shape = (3, 2, 2)
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([3, 4, 4])}),
        nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                      padding=np.array([0, 0])),
        nir.LIF(tau=np.full(shape, dt / 0.25), r=np.full(shape, 4.0), v_leak=np.zeros(shape),
                v_threshold=np.full(shape, 0.5)),
        nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0),
        nir.Linear(weight=np.ones((2, 12)) / 8),
        nir.IF(r=np.full(2, 1 / dt), v_threshold=np.full(2, 1.0)))
    model, conv = to_netx(graph, ImportConfig(dt=dt, timesteps=4))
    pool, fc = model.layers[1], model.layers[3]
    assert pool.type == "conv" and pool.groups == 3 and pool.weight.shape == (3, 1, 2, 2)
    assert (pool.neuron.i_decay, pool.neuron.v_decay) == (4096, 1024)
    assert np.all(pool.weight == 16) and pool.neuron.vth_mant == 32     # 1/4 * 0.25 * 4 * 64
    assert (fc.neuron.i_decay, fc.neuron.v_decay) == (4096, 0)
    assert np.all(fc.weight == 8) and fc.neuron.vth_mant == 64 and conv.exact


def _chain(*nodes, metadata=None):
    """nir.NIRGraph.from_list without NIR's type check (a batch axis of 1 fails it)."""
    nodes = (*nodes, nir.Output(output_type={"output": np.array([1])}))
    names = [f"n{i}" for i in range(len(nodes))]
    return nir.NIRGraph(nodes=dict(zip(names, nodes)), edges=list(zip(names, names[1:])),
                        type_check=False, metadata=metadata or {})


def _lif(shape, beta=0.875, threshold=1.0):
    """snnTorch's Leaky as its exporter writes it (dt 1e-4): v = beta v + x."""
    tau = np.full(shape, 1e-4 / (1 - beta))
    return nir.LIF(tau=tau, r=tau / 1e-4, v_leak=np.zeros(shape),
                   v_threshold=np.full(shape, threshold), v_reset=np.zeros(shape))


def test_biases_become_netx_bias_exactly(build):
    """An Affine / Conv2d bias into a LIF (the current lasts one step) and v_leak are the
    voltage netx's bias adds every step."""
    graph = _chain(
        nir.Input(input_type={"input": np.array([1, 2, 4, 4])}),     # Norse: batch axis of 1
        nir.Conv2d(input_shape=(4, 4), weight=np.full((3, 2, 3, 3), 0.25), stride=1, padding=1,
                   dilation=1, groups=1, bias=np.array([0.5, -1.0, 0.0])),
        _lif((3, 4, 4)),
        nir.Flatten(input_type={"input": np.array([3, 4, 4])}, start_dim=0),
        nir.Affine(weight=np.full((2, 48), 0.125), bias=np.array([1.0, -2.0])),
        nir.CubaLI(**{**build.snn_params((2,), 0.0, 0.5, None), "v_leak": np.full(2, 0.75)}))
    model, conv = to_netx(graph, ImportConfig(dt=1e-4, timesteps=4))
    assert conv.exact and model.meta.input_shape == [2, 4, 4]
    c, out = model.layers[1], model.layers[3]
    assert np.array_equal(c.weight, np.full((3, 2, 3, 3), 16)) and c.neuron.vth_mant == 64
    assert np.array_equal(c.bias, [32, -64, 0]) and c.neuron.v_decay == 512
    # readout: the current lasts one step (alpha 0) with gain 1, r a_mem = 1; v_leak adds
    # a_mem * 0.75 = 0.375 per step: bias (1 + 0.375, -2 + 0.375) * 64
    assert np.array_equal(out.weight, np.full((2, 48), 8))
    assert np.array_equal(out.bias, [88, -104])


def test_a_pool_after_a_conv_folds_into_one_conv():
    """Conv2d -> AvgPool2d -> neuron (snnTorch's conv block) is one netx conv of the same
    meaning: the folded conv equals conv then pool to float rounding."""
    import torch
    import torch.nn.functional as F

    from tna.nir.read import fold_pool, parse_synapse
    rng = np.random.default_rng(5)
    w, b = rng.normal(0, 0.5, (4, 2, 3, 3)), rng.normal(0, 0.2, 4)
    x = torch.tensor(rng.normal(size=(3, 2, 11, 9)))
    for stride, pool_k, kind in (((1, 1), (2, 2), "AvgPool2d"), ((2, 1), (3, 2), "SumPool2d")):
        conv = nir.Conv2d(input_shape=(11, 9), weight=w, stride=stride, padding=(1, 0),
                          dilation=(1, 2), groups=1, bias=b)
        pool = getattr(nir, kind)(kernel_size=np.array(pool_k), stride=np.array(pool_k),
                                  padding=np.array([0, 0]))
        syn = parse_synapse(conv, (2, 11, 9), "conv")
        folded = fold_pool(syn, parse_synapse(pool, syn.out_shape, "pool"), "pool")
        want = F.avg_pool2d(F.conv2d(x, torch.tensor(w), torch.tensor(b), stride=stride,
                                     padding=(1, 0), dilation=(1, 2)), pool_k)
        if kind == "SumPool2d":
            want = want * pool_k[0] * pool_k[1]
        got = F.conv2d(x, torch.tensor(folded.weight), torch.tensor(folded.bias),
                       stride=folded.conv["stride"], padding=folded.conv["padding"])
        assert got.shape[1:] == folded.out_shape == tuple(want.shape[1:])
        assert torch.allclose(got, want, atol=1e-12)
        graph = nir.NIRGraph.from_list(nir.Input(input_type={"input": np.array([2, 11, 9])}),
                                       conv, pool, _lif(folded.out_shape))
        model, quant = to_netx(graph, ImportConfig(dt=1e-4, timesteps=3))
        assert [layer.type for layer in model.layers] == ["input", "conv"]
        assert tuple(model.layers[1].shape) == folded.out_shape
        assert quant.layers[0].nodes[:2] == list(graph.nodes)[1:3]


def test_flatten_after_the_input_flattens_the_input(build):
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([1, 2, 3])}),
        nir.Flatten(input_type={"input": np.array([1, 2, 3])}, start_dim=0),
        nir.Affine(weight=np.full((2, 6), 0.25), bias=np.zeros(2)),
        nir.CubaLI(**build.snn_params((2,), 0.5, 0.5, None, dt=1.0)))
    model, _ = to_netx(graph, ImportConfig(dt=1.0, timesteps=2))
    assert [(layer.type, layer.shape) for layer in model.layers[:2]] == [("input", (6,)), ("dense", (2,))]


# --------------------------------------------------------------------------- errors

def _graph(build, **change):
    """A valid two-layer graph; `change` replaces nodes (None removes one and its edges)."""
    p = build.snn_params((3,), 0.5, 0.5, 1.0)
    nodes = {"input": nir.Input(input_type={"input": np.array([4])}),
             "fc": nir.Affine(weight=np.ones((3, 4)), bias=np.zeros(3)),
             "lif": nir.CubaLIF(**p), "output": nir.Output(output_type={"output": np.array([3])})}
    nodes.update(change)
    names = [n for n, v in nodes.items() if v is not None]
    return nir.NIRGraph(nodes={n: nodes[n] for n in names}, edges=list(zip(names, names[1:])),
                        metadata={"dt": build.dt, "timesteps": 5}, type_check=False)


@pytest.mark.parametrize("make, words", [
    (lambda b: _graph(b, fc=nir.Delay(delay=np.ones(4))), "node 'fc' is a Delay"),
    (lambda b: _graph(b, lif=nir.Threshold(threshold=np.ones(3))), "node 'lif' is a Threshold"),
    (lambda b: _graph(b, fc=nir.Affine(weight=np.ones((3, 4)), bias=np.ones(3))),
     "builds up in the current"),
    (lambda b: _graph(b, lif=nir.CubaLIF(**{**b.snn_params((3,), 0.5, 0.5, 1.0),
                                            "tau_syn": np.array([1e-4, 2e-4, 3e-4])})),
     "per-neuron tau_syn values differ"),
    (lambda b: _graph(b, lif=nir.CubaLIF(**{**b.snn_params((3,), 0.5, 0.5, 1.0),
                                            "tau_mem": np.full(3, 1e-5)})),
     "shorter than the step dt"),
    (lambda b: _graph(b, lif=nir.CubaLIF(**{**b.snn_params((3,), 0.5, 0.5, 1.0),
                                            "v_reset": np.ones(3)})), "v_reset must be 0"),
    (lambda b: _chain(nir.Input(input_type={"input": np.array([1, 4, 4])}),
                      nir.Conv2d(input_shape=(4, 4), weight=np.ones((1, 1, 2, 2)), stride=1,
                                 padding=0, dilation=1, groups=1, bias=np.zeros(1)),
                      nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([1, 1]),
                                    padding=np.array([1, 1])),
                      _lif((1, 4, 4)), metadata={"dt": b.dt, "timesteps": 5}),
     "a pool with padding after a conv"),
    (lambda b: _graph(b, lif=nir.CubaLIF(**b.snn_params((5,), 0.5, 0.5, 1.0))),
     "but the synapse before it gives (3,)"),
    (lambda b: _graph(b, fc=None), "tna needs a synapse"),
    (lambda b: _graph(b, lif=None), "tna needs a neuron"),
    (lambda b: _graph(b, extra=nir.Output(output_type={"output": np.array([3])})),
     "nodes ['extra'] are not on the chain"),
])
def test_graphs_tna_cannot_import_name_the_node(build, tmp_path, call, error_line, make, words):
    path = write(make(build), tmp_path / "bad.nir")
    code, _, err = call("import", path, "--out", tmp_path / "x.net")
    assert code == 2
    assert words in error_line(err) and str(path) in err
    assert not (tmp_path / "x.net").exists()


def test_branches_and_missing_dt_or_timesteps(build, tmp_path, call, error_line):
    g = _graph(build)
    g.edges.append(("input", "lif"))
    code, _, err = call("import", write(g, tmp_path / "branch.nir"))
    assert code == 2 and "leads to 2 nodes" in error_line(err)
    g = _graph(build)
    g.metadata = {}
    path = write(g, tmp_path / "nodt.nir")
    code, _, err = call("import", path, "--out", tmp_path / "x.net")
    assert code == 2 and "pass --dt" in error_line(err)
    code, _, err = call("import", path, "--dt", "1e-4", "--out", tmp_path / "x.net")
    assert code == 2 and "pass --timesteps" in error_line(err)
    code, _, err = call("import", path, "--dt", "-1", "--out", tmp_path / "x.net")
    assert code == 2 and "dt = -1" in error_line(err)


def _edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)
    return path


@pytest.mark.parametrize("damage, words", [
    (lambda f: f["node/nodes/lif"].__delitem__("tau_syn"), "malformed NIR graph"),
    (lambda f: f["node/nodes/fc"].__delitem__("weight"), "malformed NIR graph"),
    (lambda f: (f["node/nodes/lif"].__delitem__("type"),
                f["node/nodes/lif"].create_dataset("type", data=b"Spiky")), "is a Spiky"),
    (lambda f: f["node/nodes/lif"].__delitem__("type"), "node 'lif' has no type"),
    (lambda f: f["node"].__delitem__("edges"), "no nodes or edges"),
    (lambda f: f.__delitem__("node"), "not a NIR graph (no 'node' group)"),
    (lambda f: (f["node/nodes/fc"].__delitem__("weight"),
                f["node/nodes/fc"].create_dataset("weight", data=np.ones((3, 5)))),
     "weight takes 5 inputs"),
    (lambda f: (f["node/nodes/lif"].__delitem__("tau_mem"),
                f["node/nodes/lif"].create_dataset("tau_mem", data=np.full(3, np.nan))),
     "NaN or Inf"),
])
def test_damaged_files_get_clean_errors(build, tmp_path, call, error_line, damage, words):
    path = _edit(write(_graph(build), tmp_path / "g.nir"), damage)
    code, _, err = call("import", path, "--out", tmp_path / "x.net")
    assert code == 2 and words in error_line(err)


def test_not_nir_files(build, tmp_path, call, error_line):
    code, _, err = call("import", tmp_path / "missing.nir")
    assert code == 2 and "no such file" in error_line(err)
    (tmp_path / "text.nir").write_text("not hdf5")
    code, _, err = call("import", tmp_path / "text.nir")
    assert code == 2 and "not an HDF5 file" in error_line(err)
    net = netx.write_net(build.dense_model(), tmp_path / "a.net")
    code, _, err = call("import", net)
    assert code == 2 and "a netx file" in error_line(err)
    code, _, err = call("run", tmp_path / "text.nir", "--backend", "emulator")
    assert code == 2 and "not an HDF5 file" in error_line(err)
    with pytest.raises(TnaError, match="not a NIR graph"):
        read_graph(net)


def test_debug_shows_the_traceback(build, tmp_path):
    from tna.cli import main
    path = write(_graph(build, fc=nir.Delay(delay=np.ones(4))), tmp_path / "bad.nir")
    with pytest.raises(TnaError, match="Delay"):
        main(["--debug", "import", str(path)])


def test_import_help_ends_with_an_example(call):
    code, out, _ = call("import", "--help")
    assert code == 0 and out.rstrip().splitlines()[-1].strip().startswith("tna import ")


def test_importing_tna_does_not_import_nir():
    code = ("import sys, tna, tna.nir, tna.cli\n"
            "heavy = {'nir', 'h5py', 'torch', 'lava'} & {m.split('.')[0] for m in sys.modules}\n"
            "assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_is_nir_file_looks_inside(build, tmp_path):
    from tna.nir import is_nir_file
    net = netx.write_net(build.dense_model(), tmp_path / "named.nir")     # a netx file
    assert not is_nir_file(net)
    graph = write(_graph(build), tmp_path / "graph.h5")
    assert is_nir_file(graph)
    assert is_nir_file(tmp_path / "missing.nir") and not is_nir_file(tmp_path / "missing.net")


def test_the_subtract_reset_note_is_for_snntorch_shaped_graphs(build):
    """snnTorch's exporter writes v_reset = 0 whatever reset the net used; its neurons carry
    r = tau_mem / 1e-4. Norse writes r = 1, tna's own graphs carry tna_metadata."""
    from tna.nir.read import SUBTRACT_RESET_NOTE, caveats
    assert caveats(build.foreign_graph()) == [SUBTRACT_RESET_NOTE]
    norse = _chain(nir.Input(input_type={"input": np.array([3])}),
                   nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
                   nir.LIF(tau=np.full(2, 1e-5), r=np.ones(2), v_leak=np.zeros(2),
                           v_threshold=np.ones(2)))
    assert caveats(norse) == []
    assert caveats(build.foreign_graph(metadata={"tna_metadata": "{}"})) == []
