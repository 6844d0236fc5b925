"""Bit-exact batched emulation of Lava's fixed-point simulator for netx nets (imports torch)."""
from tna.sim.emulator import Difference, EmulatorResult, emulate, first_difference

__all__ = ["Difference", "EmulatorResult", "emulate", "first_difference"]
