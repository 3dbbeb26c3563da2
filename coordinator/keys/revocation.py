"""The revocation list: agent ids, one per line, that the coordinator refuses.

    # comments, whole lines or after an id
    3
    17   # board lost on 2026-11-28

Anything else (a word, a negative or too large number, two ids on a line) is
refused with a RevocationError naming the file and the line; so is a file
larger than MAX_REVOCATION_BYTES or one that is not UTF-8 text. The caller
decides what a bad file means: at start the coordinator does not start, at a
reload it keeps the list it had (book.py).
"""
from pathlib import Path

from fedzo.edge.protocol.agentkeys import MAX_AGENT_ID

MAX_REVOCATION_BYTES = 1 << 20     # ~100,000 ids; a longer file is a mistake, not a list


class RevocationError(ValueError):
    """A revocation list that cannot be read; the text names the file and the line."""


def parse_revocation_text(text: str, where: str = "the revocation list") -> frozenset[int]:
    """The agent ids in a revocation list's text (see the module docstring)."""
    ids = set()
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if not (entry.isascii() and entry.isdigit()) or int(entry) > MAX_AGENT_ID:
            raise RevocationError(f"{where}, line {number}: {entry[:40]!r} is not an agent id "
                                  f"(one whole number 0..{MAX_AGENT_ID} a line; # starts a comment)")
        ids.add(int(entry))
    return frozenset(ids)


def read_revocation_file(path) -> frozenset[int]:
    """The agent ids revoked in `path`; FileNotFoundError if absent, RevocationError if unfit."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no revocation list at {path}")
    with open(path, "rb") as f:
        data = f.read(MAX_REVOCATION_BYTES + 1)     # never more than the limit, whatever the file
    if len(data) > MAX_REVOCATION_BYTES:
        raise RevocationError(f"{path} is larger than {MAX_REVOCATION_BYTES} bytes: not a revocation list")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RevocationError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    return parse_revocation_text(text, str(path))
