"""netx -> NIR -> netx: exact, bit-identical round trips, and the units of the mapping table."""
import json

import nir
import numpy as np
import pytest

from tna import netx
from tna.export import ExportConfig
from tna.nir import ImportConfig, export_nir, import_nir
from tna.nir.write import to_graph


@pytest.mark.parametrize("which", ["conv", "conv-spike", "dense"])
def test_netx_nir_netx_is_bit_identical(build, tmp_path, which):
    model = build.dense_model() if which == "dense" else \
        build.conv_model(readout="spike" if which == "conv-spike" else "voltage")
    src = netx.write_net(model, tmp_path / "a.net")
    graph_path = export_nir(src, ExportConfig(out=str(tmp_path / "m.nir")), dt=1e-3)
    back, conversion = import_nir(graph_path, ImportConfig(out=str(tmp_path / "b.net")))
    assert conversion.exact
    assert back.read_bytes() == src.read_bytes()


def test_the_graph_loads_with_nir_and_its_type_check(build, tmp_path):
    src = netx.write_net(build.conv_model(), tmp_path / "a.net")
    path = export_nir(src, ExportConfig(out=str(tmp_path / "m.nir")))
    graph = nir.read(path)                      # nir's own reader, types checked
    succ = dict(graph.edges)
    order = ["input"]
    while order[-1] in succ:
        order.append(succ[order[-1]])
    kinds = [type(graph.nodes[n]).__name__ for n in order]
    assert kinds == ["Input", "Conv2d", "CubaLIF", "SumPool2d", "CubaLIF", "Flatten", "Affine",
                     "CubaLIF", "Affine", "CubaLI", "Output"]
    assert len(graph.edges) == len(kinds) - 1
    meta = graph.metadata
    assert float(meta["dt"]) == 1e-3 and int(meta["timesteps"]) == 5
    assert meta["encoding"] == "direct" and meta["weights"] == "ternary"
    assert meta["readout"] == "voltage" and "CubaLI" in meta["readout_rule"]
    assert "0..15" in meta["input_scale"]
    tna_meta = json.loads(meta["tna_metadata"])
    assert tna_meta["class_names"] == ["a", "b", "c"] and tna_meta["ternary_layers"] == [1]


def test_units_of_the_mapping(build):
    """The README's table: weights / 64, tau = dt * 4096 / decay, r = tau_mem / dt, ..."""
    dt = 1e-3
    model = build.conv_model()
    graph = to_graph(model, dt)
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
    assert "PARITY HOLDS (exact)" in out and "NIR float semantics (dt 0.001 s)" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["parity_holds"] and report["nir"]["quantisation"]["exact"]
    assert report["net"] == str(trained / "m.nir")


def test_dt_only_with_nir(trained, call, error_line):
    code, _, err = call("export", trained / "run", "--out", trained / "x.net", "--dt", "1e-3")
    assert code == 2 and "--format nir" in error_line(err)
    code, _, err = call("run", trained / "m.net", "--dt", "1e-3", "--backend", "emulator")
    assert code == 2 and "NIR" in error_line(err)
