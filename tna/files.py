"""What a path holds, read from its first bytes, so that an error names the real cause: a run
folder given to `tna run`, a checkpoint given where a .net belongs, a .net given to
`tna export`, a damaged or unrelated file."""
from __future__ import annotations

from pathlib import Path

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"      # netx files and NIR graphs are HDF5
ZIP_MAGIC = b"PK\x03\x04"              # torch.save writes a zip archive


def kind(path) -> str:
    """'missing', 'folder', 'run' (a folder with a checkpoint), 'hdf5', 'checkpoint' (a zip,
    as torch.save writes), 'empty' or 'other'."""
    p = Path(path)
    if p.is_dir():
        return "run" if any((p / n).is_file() for n in ("best.pt", "checkpoint.pt")) else "folder"
    if not p.is_file():
        return "missing"
    with open(p, "rb") as f:
        head = f.read(8)
    if not head:
        return "empty"
    if head == HDF5_MAGIC:
        return "hdf5"
    if head.startswith(ZIP_MAGIC):
        return "checkpoint"
    return "other"


def not_a_net(path) -> str | None:
    """Why `path` is no netx file, for what is plainly something else; None for HDF5."""
    k = kind(path)
    if k == "run":
        return (f"{path}: a run folder, not a netx file; export it first: "
                f"tna export {path} --out model.net")
    if k == "checkpoint":
        return (f"{path}: a tna checkpoint, not a netx file; export it first: "
                f"tna export {path} --out model.net")
    if k == "folder":
        return f"{path}: a folder, not a netx file; give the .net file written by `tna export`"
    if k == "missing":
        return f"{path}: no such file; give the path of a .net file written by `tna export`"
    if k == "empty":
        return f"{path}: an empty file, not a netx file; export the net again"
    if k == "other":
        return (f"{path}: not a netx file (not HDF5 at all); give a .net file written by "
                f"`tna export` or netx")
    return None


def not_a_checkpoint(path) -> str | None:
    """Why `path` is no checkpoint, for what is plainly something else; None otherwise."""
    k = kind(path)
    if k == "hdf5":
        return (f"{path}: an HDF5 file (a netx .net or a NIR graph), not a checkpoint; tna "
                f"export takes a run folder or a .pt written by `tna train`; run a .net with "
                f"`tna run`")
    if k == "empty":
        return f"{path}: an empty file, not a checkpoint; use a .pt written by `tna train`"
    if k == "other":
        return (f"{path}: not a tna checkpoint (not the zip archive torch.save writes); use a "
                f"run folder or a .pt written by `tna train`")
    return None
