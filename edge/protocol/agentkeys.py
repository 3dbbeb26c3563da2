"""A key per agent: an agent's key file, and the coordinator's table of keys.

The run key is the default: one secret that every agent holds. With keys per
agent (`fedzo coordinator keys`), agent id k holds a secret S_k of its own,
and both sides use K_k = HMAC(S_k, "fedzo/v3/agent-key" k) in the place of
the run key (auth.agent_root). A Hello under such a key carries k
(messages.Hello), so the coordinator verifies it under K_k and nothing else;
the Join must then be for k (session.py), and every key of that session comes
from K_k. Whoever holds only S_k can therefore speak only as agent k, and the
coordinator can revoke k alone (docs/SECURITY.md).

An agent's key file says which id it is for (`write_agent_key_file` writes
it; blank lines and lines starting with # are ignored):

    # fedzo agent key: keep it secret (mode 0600)
    agent 7
    <the secret: 32 to 128 hex digits, as in a run key file>

It is refused, with a message naming the file, for the reasons a run key
file is (keyfile.py: open to group or others, not hex, too short, one byte
repeated) and when the `agent N` line is missing, repeated or not an id.
`read_key` tells the two kinds of file apart, so `fedzo agent --key FILE`
takes either.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .auth import agent_root
from .constants import ASSIGN_AGENT_ID
from .keyfile import GENERATED_KEY_BYTES, KEY_FILE_MODE, KeyFileError, check_key_file_mode, parse_key_text, read_key_file

_AGENT_LINE = re.compile(r"agent\s+(\S+)")
MAX_AGENT_ID = ASSIGN_AGENT_ID - 1     # ASSIGN_AGENT_ID means "assign me one": never a key's id


@dataclass(frozen=True)
class AgentKey:
    """One agent's own key: its id and its secret S_k (root: K_k, derived once)."""

    agent_id: int
    secret: bytes = field(repr=False)
    root: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.agent_id, int) or not 0 <= self.agent_id <= MAX_AGENT_ID:
            raise ValueError(f"an agent key's id must be in 0..{MAX_AGENT_ID}, got {self.agent_id!r}")
        object.__setattr__(self, "root", agent_root(self.secret, self.agent_id))


def parse_agent_id(text: str, where: str) -> int:
    """An agent id written in decimal, or KeyFileError naming `where`."""
    if not text.isdigit() or not text.isascii() or int(text) > MAX_AGENT_ID:
        raise KeyFileError(f"{where}: {text!r} is not an agent id (a whole number 0..{MAX_AGENT_ID})")
    return int(text)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def is_agent_key_text(text: str) -> bool:
    """True if the text is laid out as an agent key file (it has an `agent N` line)."""
    return any(_AGENT_LINE.fullmatch(line) for line in _lines(text))


def parse_agent_key_text(text: str, where: str = "the agent key") -> AgentKey:
    """The AgentKey in an agent key file's text, or KeyFileError (see the module docstring)."""
    lines = _lines(text)
    ids = [m.group(1) for m in map(_AGENT_LINE.fullmatch, lines) if m]
    if len(ids) != 1:
        raise KeyFileError(f"{where} must hold one 'agent N' line, found {len(ids)}")
    rest = [line for line in lines if not _AGENT_LINE.fullmatch(line)]
    if len(rest) != 1:
        raise KeyFileError(f"{where} must hold one line of hex digits besides 'agent N', found {len(rest)}")
    return AgentKey(parse_agent_id(ids[0], where), parse_key_text(rest[0], where))


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"no key file at {path}")
    check_key_file_mode(path)
    try:
        return path.read_bytes().decode("ascii")
    except UnicodeDecodeError:
        return "\x00"              # not text at all: refused as keyfile.py refuses it


def read_agent_key_file(path) -> AgentKey:
    """The AgentKey in `path`; KeyFileError (a ValueError) if unfit, FileNotFoundError if absent."""
    path = Path(path)
    return parse_agent_key_text(_read_text(path), f"the agent key in {path}")


def read_key(path) -> bytes | AgentKey:
    """What a `--key` file holds: the run key (bytes) or an agent's own key (AgentKey)."""
    path = Path(path)
    if is_agent_key_text(_read_text(path)):
        return read_agent_key_file(path)
    return read_key_file(path)


def agent_key_text(key: AgentKey) -> str:
    """The text of `key`'s key file."""
    return (f"# fedzo agent key: the key of agent {key.agent_id} alone. Keep it secret (mode 0600);\n"
            f"# give it to that agent only: fedzo agent --key FILE\n"
            f"agent {key.agent_id}\n{key.secret.hex()}\n")


def write_agent_key_file(path, agent_id: int, secret: bytes | None = None, *, overwrite=False) -> AgentKey:
    """Write agent `agent_id`'s key file at `path` (a fresh random secret by default), mode 0600.

    FileExistsError if the file exists, unless overwrite (then it is replaced, also its mode).
    """
    key = AgentKey(agent_id, os.urandom(GENERATED_KEY_BYTES) if secret is None else bytes(secret))
    parse_key_text(key.secret.hex(), "the key to write")
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    fd = os.open(path, flags, KEY_FILE_MODE)
    with os.fdopen(fd, "w") as f:
        if os.name == "posix":
            os.fchmod(f.fileno(), KEY_FILE_MODE)    # O_CREAT's mode does not apply to an existing file
        f.write(agent_key_text(key))
    return key


class Keyring:
    """The coordinator's side: agent id -> K_k, the revoked ids, and what was refused.

    One Keyring is shared by every coordinator Session of a run (session.py
    looks keys up in it at each Hello and Join); `replace` installs a new
    set of keys and revoked ids at once, as a reload does.
    """

    def __init__(self, keys=(), revoked=()):
        self._roots: dict[int, bytes] = {}
        self._revoked: frozenset[int] = frozenset()
        self.decoy = os.urandom(GENERATED_KEY_BYTES)   # checks the tags of Hellos for ids without a key
        # Handshakes refused, by reason: a revoked id, an id without a key, a Join for another id.
        self.refused = {"revoked": 0, "no_key": 0, "wrong_agent": 0}
        self.replace(keys, revoked)

    def replace(self, keys, revoked) -> set[int]:
        """Install `keys` (AgentKeys) and `revoked` (ids); return the ids whose sessions must end:
        newly revoked ones, and those whose key changed or is gone."""
        roots = {}
        for key in keys:
            if key.agent_id in roots:
                raise ValueError(f"two keys for agent {key.agent_id}")
            roots[key.agent_id] = key.root
        revoked = frozenset(revoked)
        ended = {k for k, root in self._roots.items() if roots.get(k) != root}
        ended |= {k for k in revoked - self._revoked if k in self._roots}
        self._roots, self._revoked = roots, revoked
        return ended

    def root(self, agent_id: int) -> bytes | None:
        """K_k of agent `agent_id`, or None if it has no key here."""
        return self._roots.get(agent_id)

    def is_revoked(self, agent_id: int) -> bool:
        return agent_id in self._revoked

    def accepts(self, agent_id: int, root: bytes) -> bool:
        """True while `root` is agent_id's current key and agent_id is not revoked."""
        return not self.is_revoked(agent_id) and self._roots.get(agent_id) == root

    @property
    def revoked(self) -> frozenset:
        return self._revoked

    def __len__(self) -> int:
        return len(self._roots)
