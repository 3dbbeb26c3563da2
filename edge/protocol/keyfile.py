"""The pre-shared run key: read from, or written to, a key file.

A key file holds the key as hex text (what `write_key_file` writes) or as raw
bytes; either way the key must be at least 16 bytes.
"""
import os
from pathlib import Path

from fedzo.edge.protocol.constants import MIN_KEY_BYTES


def read_key_file(path) -> bytes:
    """The run key in `path`; a clear error if it is missing or too short."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no key file at {path}")
    raw = path.read_bytes()
    try:
        key = bytes.fromhex(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        key = raw
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the key in {path} is {len(key)} bytes; at least {MIN_KEY_BYTES} are needed")
    return key


def write_key_file(path, key: bytes = None) -> bytes:
    """Write `key` (default: 32 fresh random bytes) as hex, readable by the owner only."""
    key = os.urandom(32) if key is None else key
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    return key
