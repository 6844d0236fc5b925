"""Parity runs in shards: `--shard K/N` blocks, merged by `--merge`, give the report, JSON and
PNGs of one run over all samples, bit for bit except the timings."""
import json

import pytest

from tna.deploy import RunConfig, run
from tna.deploy.runner import merge
from tna.errors import TnaError


def _report(folder):
    d = json.loads((folder / "parity.json").read_text())
    d.pop("seconds")
    return d


def test_three_shards_merge_to_the_single_runs_report(digits_net, tmp_path):
    one, parts, merged = tmp_path / "one", tmp_path / "parts", tmp_path / "merged"
    kw = dict(backend="emulator", progress=False)
    single = run(digits_net, RunConfig(**kw, report=str(one / "parity.json")))
    for k in range(3):
        part = run(digits_net, RunConfig(**kw, report=str(merged / "parity.json"),
                                         shard=f"{k}/3", shard_dir=str(parts)))
        assert part.samples in (119, 120) and not (merged / "parity.json").exists()
    result = merge(parts)                 # where the shards' own config says: merged/
    assert result.samples == single.samples == 359
    a, b = _report(one), _report(merged)
    assert [p.replace("/merged/", "/one/") for p in b.pop("plots")] == a.pop("plots")
    assert a == b                         # counts, divergence, CI, confusion, predictions
    for png in ("parity_confusion.png", "parity_raster.png"):
        assert (one / png).read_bytes() == (merged / png).read_bytes()
    untimed = [line.replace("/merged/", "/one/") for line in result.summary().splitlines()[1:]
               if " s (" not in line]
    assert untimed == [line for line in single.summary().splitlines()[1:] if " s (" not in line]


def test_shard_errors_are_one_line(digits_net, tmp_path):
    with pytest.raises(TnaError, match=r"--shard 3/3: write K/N with 0 <= K < N"):
        RunConfig(shard="3/3", shard_dir="x")
    with pytest.raises(TnaError, match="give --shard-dir DIR"):
        RunConfig(shard="0/3")
    parts = tmp_path / "parts"
    run(digits_net, RunConfig(backend="emulator", progress=False, shard="1/3",
                              shard_dir=str(parts)))
    with pytest.raises(TnaError, match=r"shards 0, 2 of 3 are missing"):
        merge(parts)
    with pytest.raises(TnaError, match="no shard-K-of-N.json there"):
        merge(tmp_path / "empty")
