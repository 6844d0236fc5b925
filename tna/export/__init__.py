"""Export stage: `export(checkpoint, ExportConfig) -> Path` of a netx HDF5 file.

Kept import-light: torch and lava-dl load only when `export` runs.
"""
from tna.export.config import ExportConfig


def export(checkpoint, cfg: ExportConfig = ExportConfig()):
    """Write the base network of `checkpoint` as a netx HDF5 file; return its path."""
    from tna.export.writer import export as _export
    return _export(checkpoint, cfg)


__all__ = ["ExportConfig", "export"]
