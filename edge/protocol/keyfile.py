"""The pre-shared run key: read from, or written to, a key file.

What a key file must hold: the key as hexadecimal text, 32 to 128 hex digits
(16 to 64 bytes), upper or lower case, with nothing else but whitespace
around it (`write_key_file` writes 64 digits and a newline). Refused, each
with a message naming the file:

- a file that group or others may read or write (mode & 0o077 on POSIX):
  whoever can read it can join the run; `chmod 600 FILE` fixes it;
- anything that is not such hex text (a pass phrase, a raw binary file):
  a 16-character password is not 16 random bytes;
- a key shorter than MIN_KEY_BYTES or longer than MAX_KEY_BYTES;
- a key whose bytes are all the same (all zero, say): not a random key.

Key files are written with mode 0600, also when the file already existed
with a wider mode.
"""
import os
import re
import stat
from pathlib import Path

from fedzo.edge.protocol.constants import MIN_KEY_BYTES

MAX_KEY_BYTES = 64                 # a longer HMAC key is hashed down anyway
KEY_FILE_MODE = 0o600
GENERATED_KEY_BYTES = 32
_HEX = re.compile(r"[0-9a-fA-F]*")


class KeyFileError(ValueError):
    """A key file that cannot be used; the text names the file and the fix."""


def check_key_file_mode(path: Path) -> None:
    """KeyFileError if group or others may read or write `path` (POSIX only)."""
    if os.name != "posix":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(f"the key file {path} is open to group or others (mode {mode:04o}); "
                           f"anyone who reads it can join the run: chmod 600 {path}")


def parse_key_text(text: str, where: str = "the key") -> bytes:
    """The key in a key file's text, or KeyFileError (see the module docstring)."""
    digits = text.strip()
    if not digits or not _HEX.fullmatch(digits) or len(digits) % 2:
        raise KeyFileError(f"{where} is not a hex key: it must hold {2 * MIN_KEY_BYTES} to "
                           f"{2 * MAX_KEY_BYTES} hex digits and nothing else")
    key = bytes.fromhex(digits)
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise KeyFileError(f"{where} is {len(key)} bytes; a key must be {MIN_KEY_BYTES} to "
                           f"{MAX_KEY_BYTES} random bytes ({2 * MIN_KEY_BYTES} to {2 * MAX_KEY_BYTES} hex digits)")
    if len(set(key)) == 1:
        raise KeyFileError(f"{where} repeats one byte (0x{key[0]:02x}); it must be random bytes")
    return key


def read_key_file(path) -> bytes:
    """The run key in `path`; KeyFileError (a ValueError) if the file is unfit, FileNotFoundError if absent."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no key file at {path}")
    check_key_file_mode(path)
    try:
        text = path.read_bytes().decode("ascii")
    except UnicodeDecodeError:
        text = "\x00"              # not text at all: refused below as not hex
    return parse_key_text(text, f"the key in {path}")


def write_key_file(path, key: bytes = None) -> bytes:
    """Write `key` (default: 32 fresh random bytes) as hex, with mode 0600 (also over an existing file)."""
    key = os.urandom(GENERATED_KEY_BYTES) if key is None else bytes(key)
    parse_key_text(key.hex(), "the key to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, KEY_FILE_MODE)
    with os.fdopen(fd, "w") as f:
        if os.name == "posix":
            os.fchmod(f.fileno(), KEY_FILE_MODE)    # O_CREAT's mode does not apply to an existing file
        f.write(key.hex() + "\n")
    return key
