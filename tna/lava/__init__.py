"""Every module that imports Lava (lava-nc, lava-dl's netx), in one package.

    net.py      tna's netx loader (netx.hdf5.Network with ternary convs at 2 bits)
    procs.py    process models and run configurations (exact fast conv, memmap I/O, v writer)
    runner.py   run_lava: many samples through one compiled network (lava-sim, loihi2)
    harness.py  record_lava: one network per sample, every layer's spikes, u and v (tests)
    info.py     what Lava loaded (weight bits per layer) and the import guard for forking

It depends only downward (tna.netx, tna.sim, tna.errors); nothing below it imports it, and
importing `tna.lava` itself loads no Lava: the modules above import it inside functions.
"""
