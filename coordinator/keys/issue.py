"""`fedzo coordinator keys`: one key file per agent id, and the empty revocation list.

A key directory holds `agent-<id>.key` for each agent id (edge/protocol/agentkeys.py
says what one holds; each is mode 0600) and `revoked`, the revocation list
(revocation.py). The coordinator serves a run with `--agent-keys DIR`; each
board gets its own file, and only that one.
"""
from pathlib import Path

from fedzo.edge.protocol.agentkeys import MAX_AGENT_ID, write_agent_key_file

REVOKED_NAME = "revoked"
_REVOKED_TEXT = """\
# fedzo revocation list: the agent ids whose keys the coordinator refuses, one per line.
# Lines starting with # and text after a # are comments. After an edit, send the
# coordinator SIGHUP (kill -HUP <its pid>): revoked agents that are connected are
# disconnected and their slots freed; nobody else is disturbed.
"""


def key_file_name(agent_id: int) -> str:
    """The name of agent `agent_id`'s key file in a key directory."""
    return f"agent-{agent_id}.key"


def issue_keys(out, count: int, first: int = 0, overwrite: bool = False) -> list[Path]:
    """Write fresh keys for agent ids first .. first+count-1 into the directory `out`
    (created if needed), and an empty revocation list if it has none; the key files' paths.

    FileExistsError naming the files if any of them exists and not overwrite (nothing is
    written then); ValueError for a count or first id out of range.
    """
    if count < 1:
        raise ValueError(f"--agents must be at least 1 to issue keys, got {count}")
    if first < 0 or first + count - 1 > MAX_AGENT_ID:
        raise ValueError(f"agent ids {first}..{first + count - 1} are outside 0..{MAX_AGENT_ID}")
    out = Path(out)
    paths = [out / key_file_name(k) for k in range(first, first + count)]
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        shown = ", ".join(p.name for p in existing[:3]) + (" ..." if len(existing) > 3 else "")
        raise FileExistsError(f"{out} already holds keys for {len(existing)} of these agents ({shown}); "
                              f"their boards hold them. Give --overwrite to replace them (a new key "
                              f"locks the old one out once the coordinator reloads: kill -HUP)")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)     # a new key directory: its owner's alone
    for k, path in zip(range(first, first + count), paths):
        write_agent_key_file(path, k, overwrite=overwrite)
    revoked = out / REVOKED_NAME
    if not revoked.exists():
        revoked.write_text(_REVOKED_TEXT)
    return paths
