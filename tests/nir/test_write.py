"""netx -> NIR -> netx: exact, bit-identical round trips, and the units of the mapping table."""
import json

import nir
import numpy as np
import pytest

from tna import netx
from tna.export import ExportConfig
from tna.nir import ImportConfig, export_nir, import_nir
from tna.nir.write import to_graph


@pytest.mark.parametrize("form", ["portable", "native"])
@pytest.mark.parametrize("which", ["conv", "conv-spike", "dense", "bias"])
def test_netx_nir_netx_is_bit_identical(build, tmp_path, which, form):
    model = build.dense_model() if which == "dense" else \
        build.conv_model(readout="spike" if which == "conv-spike" else "voltage")
    if which == "bias":           # a bias in the synapse (iDecay 4096) and as v_leak (1024)
        model.layers[1].bias = np.arange(-2, 2, dtype=np.float32) * 37
        model.layers[2].bias = np.array([5, -7, 0, 300], np.float32)
        model.layers[4].bias = np.linspace(-90, 90, 12).round().astype(np.float32)
    src = netx.write_net(model, tmp_path / "a.net")
    graph_path = export_nir(src, ExportConfig(out=str(tmp_path / "m.nir")), dt=1e-3, form=form)
    back, conversion = import_nir(graph_path, ImportConfig(out=str(tmp_path / "b.net")))
    assert conversion.exact
    assert back.read_bytes() == src.read_bytes()


def _kinds(graph) -> list:
    succ = dict(graph.edges)
    order = ["input"]
    while order[-1] in succ:
        order.append(succ[order[-1]])
    assert len(graph.edges) == len(order) - 1
    return [type(graph.nodes[n]).__name__ for n in order]


@pytest.mark.parametrize("form", ["portable", "native"])
def test_the_graph_loads_with_nir_and_its_type_check(build, tmp_path, form):
    src = netx.write_net(build.conv_model(), tmp_path / "a.net")
    path = export_nir(src, ExportConfig(out=str(tmp_path / "m.nir")), form=form)
    graph = nir.read(path)                      # nir's own reader, types checked
    if form == "native":
        assert _kinds(graph) == ["Input", "Conv2d", "CubaLIF", "SumPool2d", "CubaLIF", "Flatten",
                                 "Affine", "CubaLIF", "Affine", "CubaLI", "Output"]
    else:       # what snnTorch 1.0 and Norse 1.1 import: the pool a plain conv, no CubaLI
        assert _kinds(graph) == ["Input", "Conv2d", "CubaLIF", "Conv2d", "CubaLIF", "Flatten",
                                 "Affine", "CubaLIF", "Affine", "CubaLIF", "Output"]
        pool = graph.nodes["layer2_conv"]
        assert pool.groups == 1 and pool.weight.shape == (4, 4, 2, 2)
        assert json.loads(graph.metadata["conv_groups"]) == {"layer2_conv": 4}
        assert np.all(graph.nodes["layer5_cuba"].v_threshold == netx.NON_SPIKING_VTH_MANT / 64)
    meta = graph.metadata
    assert float(meta["dt"]) == 1e-4 and int(meta["timesteps"]) == 5 and meta["form"] == form
    assert meta["encoding"] == "direct" and meta["weights"] == "ternary"
    assert meta["readout"] == "voltage"
    assert ("CubaLI)" if form == "native" else "never spikes") in meta["readout_rule"]
    assert "0..15" in meta["input_scale"]
    tna_meta = json.loads(meta["tna_metadata"])
    assert tna_meta["class_names"] == ["a", "b", "c"] and tna_meta["ternary_layers"] == [1]


def test_bias_is_written_where_nir_means_the_same(build):
    """netx adds bias to v every step: with iDecay 4096 that is the synapse's bias (v += W x +
    b), otherwise NIR's v_leak, which adds a_mem * v_leak per step."""
    model = build.conv_model()
    model.layers[1].bias = np.array([64, -128, 0, 32], np.float32)       # iDecay 4096
    model.layers[4].bias = np.full(12, 96, np.float32)                    # iDecay 0
    graph = to_graph(model, 1e-3)
    assert np.array_equal(graph.nodes["layer1_conv"].bias, [1, -2, 0, 0.5])
    assert np.all(graph.nodes["layer1_cuba"].v_leak == 0)
    lif = graph.nodes["layer4_cuba"]
    assert np.all(graph.nodes["layer4_dense"].bias == 0)
    assert np.allclose(lif.v_leak * 1e-3 / lif.tau_mem, 96 / 64)         # a_mem * v_leak


def test_units_of_the_mapping(build):
    """The table in docs/nir.md: weights / 64, tau = dt * 4096 / decay, r = tau_mem / dt, ..."""
    dt = 1e-3
    model = build.conv_model()
    graph = to_graph(model, dt, form="native")
    conv, lif = graph.nodes["layer1_conv"], graph.nodes["layer1_cuba"]
    assert np.array_equal(conv.weight * 64, model.layers[1].weight)      # exact in float32
    assert np.allclose(lif.tau_syn, dt * 4096 / 4096) and np.allclose(lif.tau_mem, dt * 4096 / 123)
    assert np.allclose(lif.r, lif.tau_mem / dt) and np.allclose(lif.w_in, lif.tau_syn / dt)
    assert np.all(lif.v_threshold == 480 / 64) and np.all(lif.v_leak == 0)
    assert lif.v_threshold.shape == (4, 4, 4)
    pool = graph.nodes["layer2_cuba"]        # weight q = 64 of the pool lives in w_in
    assert np.allclose(pool.w_in * dt / pool.tau_syn, 64 / 64)
    assert np.allclose(dt / pool.tau_mem * 4096, 0, atol=1e-3)       # vDecay 0: tau = dt * 2^24
    dense = graph.nodes["layer4_cuba"]                                # iDecay 0
    assert np.all(np.isfinite(dense.tau_syn)) and np.all(np.isfinite(dense.w_in))
    assert isinstance(graph.nodes["layer5_cuba"], nir.CubaLI)        # the voltage readout


def test_dense_first_net_gets_a_flat_input(build):
    graph = to_graph(build.dense_model(), 1e-3)
    assert list(graph.nodes["input"].input_type["input"]) == [20]
    assert "tna_metadata" in graph.metadata


def test_other_dt_gives_the_same_net(build, tmp_path):
    """Only dt / tau matters: a graph written for dt = 1e-4 imports to the same integers."""
    src = netx.write_net(build.conv_model(), tmp_path / "a.net")
    path = export_nir(src, ExportConfig(out=str(tmp_path / "m.nir")), dt=1e-4)
    back, _ = import_nir(path, ImportConfig(out=str(tmp_path / "b.net")))
    assert back.read_bytes() == src.read_bytes()


# --------------------------------------------------------------------------- from a trained run

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny fp digits run, exported with --ternary as a .net and as a .nir (CLI, in process)."""
    from tna.cli import main
    folder = tmp_path_factory.mktemp("nir-run")
    common = ["--ternary", "--limit", "30", "--no-progress", "--no-verify"]
    for argv in (["train", "--dataset", "digits", "--arch", "4c3s2-8-out", "--method", "single",
                  "--epochs", "1", "--ternary-after", "0", "--limit", "64", "--batch-size", "32",
                  "--no-augment", "--no-progress", "--out", folder / "run"],
                 ["export", folder / "run", "--out", folder / "m.net", *common],
                 ["export", folder / "run", "--format", "nir", "--out", folder / "m.nir",
                  *common]):
        try:
            main([str(a) for a in argv])
        except SystemExit as e:
            assert e.code in (0, None), argv
    return folder


def test_cli_export_import_of_a_trained_run_is_bit_identical(trained, call):
    code, out, err = call("import", trained / "m.nir", "--out", trained / "back.net")
    assert code == 0, err
    assert out.strip() == str(trained / "back.net") and "exact" in err
    assert (trained / "back.net").read_bytes() == (trained / "m.net").read_bytes()
    assert netx.read_net(trained / "back.net").meta.weights == "ternary"


def test_cli_run_of_a_tna_graph(trained, call, tmp_path):
    code, out, err = call("run", trained / "m.nir", "--backend", "emulator", "--limit", "20",
                          "--no-progress", "--report", tmp_path / "r.json")
    assert code == 0, err
    assert "PARITY HOLDS (exact)" in out and "NIR float semantics (dt 0.0001 s)" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["parity_holds"] and report["nir"]["quantisation"]["exact"]
    assert report["net"] == str(trained / "m.nir")


def test_dt_only_with_nir(trained, call, error_line):
    code, _, err = call("export", trained / "run", "--out", trained / "x.net", "--dt", "1e-3")
    assert code == 2 and "--format nir" in error_line(err)
    code, _, err = call("run", trained / "m.net", "--dt", "1e-3", "--backend", "emulator")
    assert code == 2 and "NIR" in error_line(err)


def test_nir_options_are_keys_of_the_export_config(trained, call, tmp_path):
    """--format, --dt and --nir-form are ExportConfig fields: a YAML file sets them too."""
    cfg = tmp_path / "export.yaml"
    cfg.write_text(f"format: nir\ndt: 0.001\nnir_form: native\nout: {tmp_path / 'y.graph'}\n")
    code, _, err = call("export", trained / "m.net", "--config", cfg)
    assert code == 0, err
    import nir
    graph = nir.read(tmp_path / "y.graph")
    assert any(type(n).__name__ == "CubaLI" for n in graph.nodes.values())     # native form
    assert "dt = 0.001 s, native form" in err
    cfg.write_text("nir_form: sideways\n")
    code, _, err = call("export", trained / "m.net", "--config", cfg)
    assert code == 2 and "nir_form = 'sideways': choose portable or native" in err
