"""An average pool exported as a grouped conv computes exactly what slayer's Pool block does.

The trained model (slayer blocks, Pool included) and the exported file's reference
(`tna.reference.ReferenceNet`, rebuilt from the file's integers, the pool as a depthwise conv)
are run block by block on the same integer input. The model scales direct input by
1/input_max itself while the file scales the first threshold up instead, so each block's spikes
must match exactly, and so must the logits (model voltage * 4096 = Lava integers).
"""
import pytest
import torch

from tna import checkpoint as ckpt
from tna import netx
from tna.export import ExportConfig, export
from tna.reference import ReferenceNet


def exported_pair(best, tmp_path):
    path = export(best, ExportConfig(out=str(tmp_path / "pool.net"), limit=20, verify=False,
                                     progress=False))
    model, _ = ckpt.load_model(best)
    read = netx.read_net(path)
    return model, ReferenceNet(read, readout=read.meta.readout), read


def inputs(encoding, n=64):
    g = torch.Generator().manual_seed(1)
    if encoding == "rate":
        return (torch.rand(n, 1, 8, 8, 5, generator=g) < 0.4).float()
    return torch.randint(0, 16, (n, 1, 8, 8, 1), generator=g).float().expand(-1, -1, -1, -1, 5)


def digits_inputs(best, n=64):
    from tna.data import load_data
    cfg = ckpt.data_config(ckpt.load(best))
    x, _ = next(load_data(cfg, batch_size=n, eval_batch_size=n).test.batches(0))
    return x


@pytest.mark.parametrize("name", ["pool", "pool-rate"])
def test_pool_block_equals_grouped_conv_exactly(trained, tmp_path, name):
    best = trained(name)
    model, ref, read = exported_pair(best, tmp_path)
    pool_layer = read.layers[2]
    assert pool_layer.type == "conv" and pool_layer.groups == pool_layer.out_channels == 4
    kinds = [type(b).__name__ for b in model.blocks]
    assert kinds == ["Conv", "Pool", "Flatten", "Dense", "Dense"]
    assert len(ref.blocks) == len(model.blocks)

    for x in (inputs(read.meta.encoding), digits_inputs(best)):
        with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
            # the conversion alone: the same spikes into slayer's Pool and the grouped conv
            s1 = model.blocks[0](model._prepare(x))
            assert s1.sum() > 0
            pooled = model.blocks[1](s1)
            assert pooled.sum() > 0, "the pool must spike for this test to mean anything"
            assert torch.equal(pooled, ref.blocks[1](s1))

            # the whole net, block by block, from the same integer input
            hm, hr = model._prepare(x), x
            for i in range(len(model.blocks) - 1):
                hm, hr = model.blocks[i](hm), ref.blocks[i](hr)
                assert torch.equal(hm, hr), f"block {i} ({kinds[i]})"
            logits = model(x)
        out = ref(x)
        assert torch.equal(torch.round(logits * netx.STATE_SCALE), out.logits)
        assert torch.equal(logits.argmax(1), out.logits.argmax(1))
