"""The coordinator's key book: the key directory and the revocation list it serves with.

At start (`KeyBook(...)`) both are read, and anything wrong stops the start
with a message naming the file: a key file that is unfit (edge/protocol/
agentkeys.py), one whose name does not match the agent it is for, a
directory with no key at all, a malformed revocation list. A missing
revocation list means that nothing is revoked.

`reload()` reads both again (SIGHUP, reload.py) and installs them in the
run's Keyring in one step. If either cannot be read, it says why and keeps
what it had, whole: a typo in the list never stops the run, nor un-revokes
anyone. A revocation list that existed and was deleted keeps the previous
list too (write an empty file to revoke nobody). It returns the agent ids
whose sessions must end: those newly revoked, and those whose key was
replaced or removed (a board re-keyed after a theft must not keep a session
opened under the old key).
"""
import re
from pathlib import Path

from fedzo.coordinator.keys.issue import REVOKED_NAME, key_file_name
from fedzo.coordinator.keys.revocation import RevocationError, read_revocation_file
from fedzo.edge.protocol.agentkeys import Keyring, read_agent_key_file
from fedzo.edge.protocol.keyfile import KeyFileError

_KEY_NAME = re.compile(r"agent-.*\.key")


def read_key_dir(keys_dir) -> list:
    """The AgentKeys in a key directory's agent-<id>.key files; KeyFileError if one is unfit,
    misnamed, or if there is none; FileNotFoundError if the directory is absent."""
    keys_dir = Path(keys_dir)
    if not keys_dir.is_dir():
        raise FileNotFoundError(f"no key directory at {keys_dir} (fedzo coordinator keys --agents N --out DIR)")
    keys = []
    for path in sorted(p for p in keys_dir.iterdir() if _KEY_NAME.fullmatch(p.name)):
        key = read_agent_key_file(path)
        if path.name != key_file_name(key.agent_id):
            raise KeyFileError(f"{path} holds the key of agent {key.agent_id}; its name must be "
                               f"{key_file_name(key.agent_id)}")
        keys.append(key)
    if not keys:
        raise KeyFileError(f"{keys_dir} holds no agent key (agent-<id>.key); "
                           f"fedzo coordinator keys --agents N --out {keys_dir} writes them")
    return keys


class KeyBook:
    """The key directory and revocation list behind a run's Keyring (see the module docstring)."""

    def __init__(self, keys_dir, revoked_path=None, log=print):
        self.keys_dir = Path(keys_dir)
        self.revoked_path = Path(revoked_path) if revoked_path is not None else self.keys_dir / REVOKED_NAME
        self.explicit_list = revoked_path is not None
        self.log = log
        self.reloads = 0              # reloads that took effect
        self.failed_reloads = 0       # reloads that kept the old keys and list
        self.disconnected = 0         # sessions ended by reloads
        self.keyring = Keyring(read_key_dir(self.keys_dir), self._read_revoked(None))

    def _read_revoked(self, previous):
        """The revoked ids in the list; `previous` (None at start) if it is gone."""
        if not self.revoked_path.exists():
            if self.explicit_list and previous is None:
                raise FileNotFoundError(f"no revocation list at {self.revoked_path} (--revoked)")
            if previous:
                raise RevocationError(f"{self.revoked_path} is gone; {len(previous)} agents stay revoked "
                                      f"(write an empty file there to revoke nobody)")
            return frozenset()
        return read_revocation_file(self.revoked_path)

    def reload(self) -> set:
        """Read the keys and the list again; the ids whose sessions must end (see the module
        docstring). Never raises for bad files: it logs why and keeps what it had."""
        try:
            keys = read_key_dir(self.keys_dir)
            revoked = self._read_revoked(self.keyring.revoked)
        except (OSError, ValueError) as exc:       # KeyFileError and RevocationError are ValueErrors
            self.failed_reloads += 1
            self.log(f"coordinator: keys not reloaded, the previous ones stay in force: {exc}")
            return set()
        newly = revoked - self.keyring.revoked
        ended = self.keyring.replace(keys, revoked)
        self.reloads += 1
        self.log(f"coordinator: keys reloaded: {len(keys)} agent keys, {len(revoked)} revoked"
                 + (f" (newly: {sorted(newly)})" if newly else "")
                 + (f"; ending the sessions of agents {sorted(ended)}" if ended else ""))
        return ended

    def counts(self) -> dict:
        """What the keys refused and what reloads did, for the run's last lines."""
        return {**{f"refused_{k}": n for k, n in self.keyring.refused.items()},
                "reloads": self.reloads, "failed_reloads": self.failed_reloads,
                "disconnected": self.disconnected}
