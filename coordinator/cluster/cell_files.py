"""A run folder's files as bytes (sent between a Ray worker and the driver), and back to disk.

The driver writes what a worker sends back; summary.json goes last, each file through a
temporary name and a rename, so a driver stopped while writing never leaves a cell that
looks finished (summary.json present) without the rest of its files.
"""
import os
from pathlib import Path

from fedzo.coordinator.run.folder import SUMMARY

PARTIAL = ".partial"


def read_folder(folder) -> dict:
    """{relative path: bytes} of every file under `folder` (empty if it does not exist)."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {path.relative_to(folder).as_posix(): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file() and not path.name.endswith(PARTIAL)}


def write_folder(folder, files: dict):
    """Write `files` ({relative path: bytes}) under `folder`; summary.json last."""
    folder = Path(folder).resolve()
    for name in sorted(files, key=lambda n: n == SUMMARY):
        path = (folder / name).resolve()
        if folder not in path.parents:       # a path from elsewhere must not write outside the folder
            raise ValueError(f"refusing to write {name!r} outside {folder}")
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + PARTIAL)
        partial.write_bytes(files[name])
        os.replace(partial, path)
