"""Reading arrays from .npz files that may be damaged or hostile.

Checkpoints and actor files are .npz archives. `SavedArrays` opens one and
hands out its members one at a time, each checked against a size limit from
the member's .npy header before a byte of its data is read, so a file that
claims 200 million elements is refused without allocating them. Every
failure (a truncated or corrupt archive, a missing or oversized member, a
member of the wrong kind) is a BadArrayFile: a ValueError whose one-line
message names the file and the field.
"""
import zipfile
import zlib

import numpy as np

SCALAR_BYTES = 64          # limit for a number or a short name


class BadArrayFile(ValueError):
    """An .npz file that cannot be used; the message names the file and the field."""


_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error, RecursionError)


class SavedArrays:
    """An open .npz file (use as a context manager); `get(name, max_bytes)` reads one member."""

    def __init__(self, path, what: str):
        """Open path; what names the kind of file in errors ("fedzo actor file")."""
        self.path, self.what = path, what
        try:
            self._npz = np.load(path, allow_pickle=False)
        except _READ_ERRORS as exc:
            raise BadArrayFile(f"{path} is not a {what}: {exc}") from None
        if not isinstance(self._npz, np.lib.npyio.NpzFile):
            raise BadArrayFile(f"{path} is not a {what}: not an .npz archive")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._npz.close()

    def __contains__(self, name: str) -> bool:
        """Whether the archive has member `name`."""
        return name in self._npz.files

    def error(self, name: str, problem: str) -> BadArrayFile:
        """A BadArrayFile naming the file and field `name`."""
        return BadArrayFile(f"{self.path}: field {name!r} {problem}")

    def _header(self, name: str):
        """(shape, dtype) of member `name`, read from its .npy header only."""
        with self._npz.zip.open(name + ".npy") as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        return shape, dtype

    def get(self, name: str, max_bytes: int = SCALAR_BYTES) -> np.ndarray:
        """Member `name`, refused unread if its data would take more than max_bytes."""
        if name not in self._npz.files:
            raise self.error(name, "is missing")
        try:
            shape, dtype = self._header(name)
            size = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if size > max_bytes:
                raise self.error(name, f"holds {size} bytes, more than the {max_bytes} allowed")
            return self._npz[name]
        except BadArrayFile:
            raise
        except _READ_ERRORS as exc:
            raise self.error(name, f"cannot be read: {exc}") from None

    def integer(self, name: str, low: int, high: int) -> int:
        """A whole number in [low, high] stored as member `name`."""
        value = self.get(name)
        if value.shape != () or value.dtype.kind not in "iu" or not low <= int(value) <= high:
            raise self.error(name, f"must be a whole number in [{low}, {high}], got {value!r}")
        return int(value)

    def text(self, name: str, max_bytes: int = SCALAR_BYTES) -> str:
        """A string stored as member `name`."""
        value = self.get(name, max_bytes)
        if value.shape != () or value.dtype.kind != "U":
            raise self.error(name, "must be a string")
        return str(value)
