"""Bench stage: `bench(BenchConfig) -> Path` of the bench folder.

A grid of `tna train` runs (methods x weight modes x alphas x seeds), each exported and deployed
on the emulator; then results.csv, tables.md and plots (tna.bench.report). Resumable: finished
cells are skipped, a killed cell resumes its training.

Kept import-light: torch and lava-dl load only when `bench` runs.
"""
from tna.bench.config import BenchConfig


def bench(cfg: BenchConfig, cell: str | None = None, report_only: bool = False):
    """Run the grid of `cfg` (skipping finished cells) and write its report; returns the folder.
    `cell`: run that one cell (name or index) and nothing else; `report_only`: the report only."""
    from tna.bench.runner import bench as _bench
    return _bench(cfg, cell=cell, report_only=report_only)


__all__ = ["BenchConfig", "bench"]
