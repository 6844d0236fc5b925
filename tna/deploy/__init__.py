"""Deploy stage: `run(net, RunConfig) -> RunResult` runs a netx file on a backend (Lava
simulator, Loihi 2, tna's emulator or the slayer reference) and reports parity.

Kept import-light: Lava loads only when a Lava backend runs.
"""
from tna.deploy.config import RunConfig


def run(net_path, cfg: RunConfig = RunConfig()):
    """Run `net_path` per `cfg`; returns a RunResult (see tna.deploy.runner)."""
    from tna.deploy.runner import run as _run
    return _run(net_path, cfg)


__all__ = ["RunConfig", "run"]
