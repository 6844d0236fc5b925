"""tna: Twin Network Augmentation for lava-dl SNNs, with deployment parity on Lava / Loihi 2.

`import tna` stays light: Lava and lava-dl are imported only inside the functions that need them.
"""
__version__ = "0.1.0"
