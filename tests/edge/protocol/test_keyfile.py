"""Key files (issue 11, finding 7): permissions, what a key must be, how it is written."""
import os
import socket
import stat
import subprocess
import sys

import pytest
from waiting import PATIENCE

from fedzo.edge.protocol.keyfile import KeyFileError, read_key_file, write_key_file

GOOD = bytes.fromhex("8d1f3a6b0c9e27d45f1a8b3c6e0d9f2a7b4c1e8d5a2f6b9c0e3d7a1f4b8c2e65")


def _write(path, text, mode=0o600):
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_a_good_key_file_reads_back(tmp_path):
    assert read_key_file(_write(tmp_path / "k", GOOD.hex())) == GOOD
    assert read_key_file(_write(tmp_path / "u", f"  {GOOD.hex().upper()}\n\n")) == GOOD


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_a_key_file_open_to_group_or_others_is_refused(tmp_path, mode):
    path = _write(tmp_path / "run.key", GOOD.hex(), mode)
    with pytest.raises(KeyFileError, match=f"chmod 600 {path}"):
        read_key_file(path)


@pytest.mark.parametrize("text, reason", [
    ("correct-horse-16", "not a hex key"),                 # a 16-character text key
    ("00" * 32, "repeats one byte"),                       # all zero
    ("ab" * 32, "repeats one byte"),
    ("0f" * 15, "15 bytes"),                               # too short
    ("0123456789abcdef" * 9, "72 bytes"),                  # too long
    (GOOD.hex()[:-1], "not a hex key"),                    # an odd number of digits
    (GOOD.hex() + " extra", "not a hex key"),
    ("", "not a hex key"),
])
def test_weak_or_malformed_keys_are_refused(tmp_path, text, reason):
    path = _write(tmp_path / "k", text)
    with pytest.raises(KeyFileError, match=reason) as info:
        read_key_file(path)
    assert str(path) in str(info.value)


def test_a_raw_binary_key_file_is_refused(tmp_path):
    path = tmp_path / "k"
    path.write_bytes(os.urandom(32) + b"\xff")
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match="not a hex key"):
        read_key_file(path)


def test_key_files_are_written_0600_even_over_a_wider_file(tmp_path):
    path = _write(tmp_path / "run.key", "old", 0o644)
    key = write_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_file(path) == key and len(key) == 32
    fresh = tmp_path / "sub" / "fresh.key"
    write_key_file(fresh, GOOD)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600 and read_key_file(fresh) == GOOD
    with pytest.raises(KeyFileError):
        write_key_file(tmp_path / "weak.key", bytes(32))


def test_the_coordinator_refuses_an_existing_world_readable_run_key(tmp_path):
    """An existing 0644 run.key was used without a word."""
    out = tmp_path / "run"
    out.mkdir()
    _write(out / "run.key", GOOD.hex(), 0o644)
    with socket.socket() as s:                     # a free port, should the key be taken
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run([sys.executable, "-m", "fedzo.cli", "coordinator", "--out", str(out), "--agents", "1",
                           "--rounds", "1", "--listen", f"127.0.0.1:{port}", "--join-timeout", "1"],
                          capture_output=True, text=True, timeout=PATIENCE)
    assert done.returncode == 2 and f"chmod 600 {out / 'run.key'}" in done.stderr
