"""Bit-exact batched emulation of Lava's fixed-point simulator for netx nets (imports torch)."""
from tna.sim.emulator import Difference, Recording, emulate, first_difference

__all__ = ["Difference", "Recording", "emulate", "first_difference"]
