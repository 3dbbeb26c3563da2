"""run.json: how `fedzo coordinator` served a run, so that `--resume DIR` serves it the same way.

Written when the coordinator has bound its address, before the first round:
the TCP address it listens on (as bound), its serial ports and their
settings, the round, join and quorum options, the run key's file and a
fingerprint of the key. A resumed run takes all of these from the record; an
option given again must agree with it (ValueError naming the option and the
file otherwise), and the key file must still hold the same key: a new key
would lock out every agent, which holds the old one.
"""
import hashlib
from pathlib import Path

from fedzo.coordinator.run.folder import RUN_RECORD
from fedzo.edge.links.address import parse_address

# The coordinator's options that the record keeps (its argparse dests), in help order.
SERVE_OPTIONS = ("listen", "serial", "baud", "fragment", "link_timeout", "round_timeout",
                 "join_timeout", "quorum")
# Recorded only when given (a key per agent: the key directory and the revocation list);
# a record without them was served with the run key.
KEY_OPTIONS = ("agent_keys", "revoked")


def key_fingerprint(key: bytes) -> str:
    """A short public name of a run key (a keyed hash; it tells keys apart, reveals nothing)."""
    return hashlib.blake2b(key, digest_size=8, person=b"fedzo run key").hexdigest()


def write_record(folder, options: dict, key_file: Path, key: bytes) -> None:
    """Save the serve options (SERVE_OPTIONS) and the key's file and fingerprint in run.json."""
    record = {name: options.get(name) for name in SERVE_OPTIONS}
    record.update({name: options[name] for name in KEY_OPTIONS if options.get(name) is not None})
    record.update(key_file=str(Path(key_file).resolve()), key_fingerprint=key_fingerprint(key))
    folder.write_json(RUN_RECORD, record)


def read_record(folder) -> dict | None:
    """run.json as a dict, or None in a folder written before run.json existed."""
    if not (folder.path / RUN_RECORD).exists():
        return None
    record = folder.read_json(RUN_RECORD)
    if not isinstance(record, dict) or not all(name in record for name in SERVE_OPTIONS):
        raise ValueError(f"{folder.path / RUN_RECORD}: not a fedzo run record")
    return record


def _same(name, given, recorded) -> bool:
    if name == "listen" and given is not None and recorded is not None:
        return parse_address(given) == parse_address(recorded)
    return given == recorded


def resumed_options(folder, record: dict, given: dict) -> dict:
    """The serve options of a resumed run: the record's, where every option given again
    (not None in `given`) must agree; ValueError naming the option and run.json if not."""
    for name in SERVE_OPTIONS + KEY_OPTIONS:
        value = given.get(name)
        if value is not None and not _same(name, value, record.get(name)):
            flag = "--" + name.replace("_", "-")
            shown = ",".join(value) if isinstance(value, list) else value
            raise ValueError(f"{flag} {shown} differs from the run's {record.get(name)!r} "
                             f"({folder.path / RUN_RECORD}); leave it out to resume the run as it was")
    return {name: record.get(name) for name in SERVE_OPTIONS + KEY_OPTIONS}


def check_key(record: dict | None, key_file: Path, key: bytes) -> None:
    """ValueError if key is not the key the run was started with."""
    if record and record.get("key_fingerprint") not in (None, key_fingerprint(key)):
        raise ValueError(f"{key_file} does not hold the key this run was started with "
                         f"({record.get('key_file')}); its agents would all be refused")
