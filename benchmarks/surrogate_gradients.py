"""Mean |gradient| of each weight layer at initialisation, with slayer's surrogate and tna's.

    .venv/bin/python benchmarks/surrogate_gradients.py

One batch of Fashion-MNIST (64 images; 8 for CIFARNet), cross-entropy on the voltage readout,
conv-small and CIFARNet, T = 5. slayer's CUBA surrogate shrinks the gradient about 1000x per
spiking layer; below Adam's epsilon (1e-8) a layer stops learning. results/accuracy.md.
"""



def main():
    import torch

    from tna.data import DataConfig, load_data
    from tna.models.snn import build_model
    from tna.models.spec import make_spec

    data = load_data(DataConfig(dataset="fashion-mnist", train_limit=256, augment=False),
                     batch_size=64, eval_batch_size=64)
    x, y = next(data.train.batches(0))
    for arch, n in (("conv-small", 64), ("cifarnet", 8)):
        for tau, scale in ((1.0, 1.0), (0.02, 10.0)):
            spec = make_spec(arch, (1, 28, 28), 10, current_decay=1.0, tau_grad=tau,
                             scale_grad=scale, input_scale=1 / 15)
            model = build_model(spec, seed=0)
            torch.nn.functional.cross_entropy(model(x[:n]), y[:n]).backward()
            grads = [float(b.synapse.weight.grad.abs().mean()) for b in model.synapse_blocks
                     if b.synapse.weight.requires_grad]
            print(f"{arch:<10} tau_grad {tau:<4} scale_grad {scale:<4}: "
                  + " ".join(f"{g:.1e}" for g in grads))


if __name__ == "__main__":
    main()
