"""`fedzo coordinator [--listen HOST:PORT] [--serial PORT[,PORT...]]`: serve a run to agents.

TCP agents and serial ports are served by one loop (coordinator/transports/server.py).
Without --serial the coordinator listens on 0.0.0.0:7700; with --serial it
listens on TCP only if --listen is given. `--resume DIR` serves the run in DIR
as it was started (coordinator/run/record.py).

A key per agent (coordinator/keys/): `fedzo coordinator keys --agents N --out DIR`
writes DIR/agent-<id>.key for ids 0..N-1 (--first F: F..F+N-1) and an empty
DIR/revoked; `fedzo coordinator --agent-keys DIR` serves a run to those keys
only, and SIGHUP makes it read DIR (and --revoked FILE, default DIR/revoked)
again. Without --agent-keys the run key serves, as before.
"""
import os
import sys
from dataclasses import fields
from pathlib import Path

from fedzo.coordinator.commands.run_options import add_run_arguments, config_for_resume, config_from_args
from fedzo.coordinator.commands.simulate import default_out
from fedzo.coordinator.run.claim import new_run_folder
from fedzo.coordinator.run.folder import CONFIG, RUN_KEY, RUN_RECORD, SUMMARY, FolderWriteError, RunFolder
from fedzo.coordinator.run.record import check_key, read_record, resumed_options, write_record
from fedzo.edge.human import HUMAN_ROUND_TIMEOUT
from fedzo.edge.learning.config import ConfigError, RunConfig
from fedzo.edge.links.address import parse_address
from fedzo.edge.protocol.keyfile import read_key_file, write_key_file

DEFAULT_LISTEN = "0.0.0.0:7700"
DEFAULT_ROUND_TIMEOUT = 120.0


def add_arguments(parser):
    parser.add_argument("action", nargs="?", choices=["keys"], default=None,
                        help="keys: issue one key file per agent id (--agents N --out DIR [--first ID] "
                             "[--overwrite]) instead of serving a run")
    add_run_arguments(parser)
    parser.add_argument("--listen", default=None, metavar="HOST:PORT",
                        help="address to accept TCP agents on (default 0.0.0.0:7700, or none with --serial)")
    parser.add_argument("--serial", default=None, metavar="PORT[,PORT...]",
                        help="serial ports to serve agents on: devices (/dev/ttyUSB0) or pyserial URLs, "
                             "comma-separated; one agent per port")
    parser.add_argument("--baud", type=int, default=None, help="serial baud rate, 8N1 (default 115200)")
    parser.add_argument("--fragment", type=int, default=None,
                        help="serial: frame bytes per packet (default 128; smaller survives more noise)")
    parser.add_argument("--link-timeout", type=float, default=None,
                        help="serial: seconds without an acknowledgement before an agent counts as gone "
                             "(default 30)")
    parser.add_argument("--key-file", help="the run key; created (random) if the file does not exist "
                        "(default: OUT/run.key)")
    parser.add_argument("--out", help="run folder (default: runs/<algo>-<task>-<time>); a folder that "
                        "already holds a run is refused unless --overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run in --out (its files go; other files stay)")
    parser.add_argument("--resume", metavar="DIR",
                        help="continue the run in DIR from its checkpoint, with the address, key, ports and "
                             "options it was started with (DIR/run.json); options given again must agree, "
                             "except --rounds N, which extends the run to N rounds")
    parser.add_argument("--round-timeout", type=float, default=None,
                        help="seconds a round waits for missing votes (they count 0; default 120, with "
                             f"--preference human {HUMAN_ROUND_TIMEOUT:.0f}); an agent "
                             "silent for a whole round is absent: no round waits for it until it speaks")
    parser.add_argument("--join-timeout", type=float, default=None,
                        help="start with --quorum agents if not all K joined after this many seconds")
    parser.add_argument("--quorum", type=int, default=None, help="agents enough to start at the join timeout")
    parser.add_argument("--agent-keys", metavar="DIR", default=None,
                        help="serve with a key per agent: the agent-<id>.key files in DIR (fedzo coordinator "
                             "keys); the run key is then refused. SIGHUP reads DIR and the revocation list again")
    parser.add_argument("--revoked", metavar="FILE", default=None,
                        help="with --agent-keys: the revocation list, agent ids one a line (default DIR/revoked)")
    parser.add_argument("--first", type=int, default=None,
                        help="keys: the first agent id to issue a key for (default 0)")


def _serve_options(args) -> dict:
    """The serve options given on the command line (None where not given)."""
    serial = [p.strip() for p in args.serial.split(",") if p.strip()] if args.serial is not None else None
    if args.serial is not None and not serial:
        raise ValueError("--serial needs at least one port")
    if serial and len(set(serial)) != len(serial):
        raise ValueError("--serial names a port twice")
    if args.listen is not None:
        parse_address(args.listen)
    if args.revoked is not None and args.agent_keys is None:
        raise ValueError("--revoked goes with --agent-keys")
    return {"listen": args.listen, "serial": serial, "baud": args.baud, "fragment": args.fragment,
            "link_timeout": args.link_timeout, "round_timeout": args.round_timeout,
            "join_timeout": args.join_timeout, "quorum": args.quorum,
            "agent_keys": _resolved(args.agent_keys), "revoked": _resolved(args.revoked)}


def _resolved(path):
    return None if path is None else str(Path(path).resolve())


def _issue_keys(args) -> int:
    """`fedzo coordinator keys`: write the key files; 0, or 2 with a message."""
    from fedzo.coordinator.keys.issue import issue_keys
    from fedzo.edge.learning.config import RunConfig
    others = [f.name for f in fields(RunConfig) if f.name != "agents" and getattr(args, f.name, None) is not None]
    others += [name for name in ("listen", "serial", "resume", "agent_keys", "revoked", "key_file", "config")
               if getattr(args, name, None) is not None]
    try:
        if others:
            raise ValueError(f"keys takes --agents, --out, --first and --overwrite only, not "
                             f"--{others[0].replace('_', '-')}")
        if args.agents is None or args.out is None:
            raise ValueError("keys needs --agents N (how many keys) and --out DIR (where to write them)")
        first = args.first or 0
        paths = issue_keys(args.out, args.agents, first, overwrite=args.overwrite)
    except (ValueError, OSError) as exc:
        print(f"fedzo coordinator keys: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(paths)} agent keys to {args.out} (agents {first}..{first + len(paths) - 1}, mode 0600) "
          f"and the revocation list {Path(args.out) / 'revoked'}")
    print(f"give each board its own file only: fedzo agent --connect HOST:PORT --key agent-<id>.key; "
          f"serve them with: fedzo coordinator --agent-keys {args.out} ...")
    return 0


def _fresh(args):
    """(config, out, serve options, key file) of a new run."""
    config = config_from_args(args)
    out = Path(args.out) if args.out else default_out(config)
    options = _serve_options(args)
    if options["listen"] is None and not options["serial"]:
        options["listen"] = DEFAULT_LISTEN
    options["serial"] = options["serial"] or []
    options["round_timeout"] = options["round_timeout"] or (
        HUMAN_ROUND_TIMEOUT if config.preference == "human" else DEFAULT_ROUND_TIMEOUT)
    return config, out, options, Path(args.key_file) if args.key_file else out / RUN_KEY


def _resumed(args):
    """(config, out, serve options, key file, key, saved config) of the run in --resume DIR,
    as it was started (coordinator/run/record.py); nothing is written."""
    out = Path(args.resume)
    if args.out is not None and Path(args.out) != out:
        raise ValueError("--out names another folder than --resume; a resumed run stays in its folder")
    if not (out / CONFIG).is_file():
        raise FileNotFoundError(f"--resume: no run to resume at {out} (no {CONFIG})")
    folder = RunFolder(out, create=False)
    try:
        saved = RunConfig.from_dict(folder.read_json(CONFIG))
    except ConfigError as exc:
        raise ConfigError(f"{out / CONFIG}: {exc}") from exc
    config = config_for_resume(args, saved, out / CONFIG)
    record = read_record(folder)
    given = _serve_options(args)
    if record is not None:
        options = resumed_options(folder, record, given)
    elif given["listen"] is None and not given["serial"]:
        raise ValueError(f"{out} has no {RUN_RECORD} (started by an older fedzo): give --listen or "
                         f"--serial as the run was served")
    else:
        options = {**given, "serial": given["serial"] or [],
                   "round_timeout": given["round_timeout"] or DEFAULT_ROUND_TIMEOUT}
    key_path = Path(args.key_file or (record or {}).get("key_file") or out / RUN_KEY)
    if not key_path.is_file():
        raise FileNotFoundError(f"the run key {key_path} is missing; a new key would lock out the run's "
                                f"agents, so the run is not resumed (restore the file or give --key-file)")
    key = read_key_file(key_path)
    check_key(record, key_path, key)
    return config, out, options, key_path, key, saved


def run(args) -> int:
    from fedzo.coordinator.run.summary_text import print_summary
    from fedzo.edge.links.serial_link import DEFAULT_BAUD, SerialLinkError
    if args.action == "keys":
        return _issue_keys(args)
    if args.first is not None:
        print("fedzo coordinator: --first goes with `fedzo coordinator keys`", file=sys.stderr)
        return 2
    try:
        if args.resume:
            if args.overwrite:
                raise ValueError("--overwrite starts a new run; it does not go with --resume")
            config, out, options, key_path, key, saved = _resumed(args)
            the_run, server, book = _set_up(config, out, options, key_path, key, saved)
        else:
            config, out, options, key_path = _fresh(args)
            with new_run_folder(out, args.overwrite) as made:
                if key_path.exists():
                    key = read_key_file(key_path)
                else:
                    made.append(key_path)
                    key = write_key_file(key_path)
                the_run, server, book = _set_up(config, out, options, key_path, key, None)
    except (ConfigError, ValueError, OSError, SerialLinkError) as exc:
        print(f"fedzo coordinator: {exc}", file=sys.stderr)
        return 2
    if server is None:
        return _finished(the_run, out, print_summary)
    if book is None:
        print(f"run key in {key_path}; waiting for {config.agents} agents")
        key_option = f"--key-file {key_path.name}"
    else:
        print(f"a key per agent: {len(book.keyring)} keys in {book.keys_dir}, {len(book.keyring.revoked)} "
              f"revoked ({book.revoked_path}); waiting for {config.agents} agents")
        key_option = "--key agent-<id>.key"
    if options["listen"] is not None:
        bound = server.address
        print(f"listening on {bound[0]}:{bound[1]}; start agents with: "
              f"fedzo agent --connect <this host>:{bound[1]} {key_option}")
    baud = options["baud"] or DEFAULT_BAUD
    for port in options["serial"]:
        print(f"serving serial port {port} at {baud} baud; on the board: "
              f"fedzo agent --serial <its port> --baud {baud} {key_option}")
    check = None
    if book is not None:
        from fedzo.coordinator.keys.reload import Reloader
        reloader = Reloader(book, the_run.runtime, server.push)
        if reloader.install():
            print(f"kill -HUP {os.getpid()} reads the keys and the revocation list again", flush=True)
        check = reloader.poll
    try:
        server.serve(check=check)
        summary = the_run.finish()
        print_summary(summary, out)
    except FolderWriteError as exc:
        print(f"fedzo coordinator: {exc}; the run folder keeps its last checkpoint: "
              f"fedzo coordinator --resume {out} continues the run once the file can be written",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # The checkpoint's count, not the runtime's: rounds may close before they are recorded.
        print(f"fedzo coordinator: interrupted with {the_run.checkpointed_rounds} of {config.rounds} rounds "
              f"saved; `fedzo coordinator --resume {out}` continues the run from there",
              file=sys.stderr)
        return 130
    if book is not None:
        print("agent keys: " + ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in book.counts().items()))
    for error in summary["errors"]:
        print(f"fedzo coordinator: {error}", file=sys.stderr)
    return 1 if summary["errors"] else 0


def _set_up(config, out, options, key_path, key, saved):
    """(Run, Server, KeyBook or None) serving the run, or (Run, None, None) for a resumed run
    with no round left."""
    from fedzo.coordinator.run.lifecycle import Run
    from fedzo.coordinator.transports.server import Server
    from fedzo.edge.links.serial_link import DEFAULT_BAUD, DEFAULT_FRAGMENT_BYTES, DEFAULT_LINK_TIMEOUT
    serial = options["serial"]
    if not serial and any(options[k] is not None for k in ("baud", "fragment", "link_timeout")):
        raise ValueError("--baud, --fragment and --link-timeout apply to --serial only")
    address = parse_address(options["listen"]) if options["listen"] is not None else None
    if options["quorum"] is not None and not 1 <= options["quorum"] <= config.agents:
        raise ConfigError(f"--quorum must be between 1 and {config.agents}")
    book = None
    if options.get("agent_keys") is not None:     # read before anything is written: a bad key stops here
        from fedzo.coordinator.keys.book import KeyBook
        book = KeyBook(options["agent_keys"], options.get("revoked"))
    extend = saved is not None and config.rounds > saved.rounds
    the_run = Run(config, out, resume=saved is not None, extend=extend,
                  round_timeout=options["round_timeout"], join_timeout=options["join_timeout"],
                  quorum=options["quorum"])
    if saved is not None and the_run.runtime.round >= config.rounds:
        return the_run, None, None
    server = Server(the_run, key if book is None else book.keyring, listen=address, serial=serial,
                    baud=options["baud"] or DEFAULT_BAUD, fragment=options["fragment"] or DEFAULT_FRAGMENT_BYTES,
                    link_timeout=options["link_timeout"] or DEFAULT_LINK_TIMEOUT)
    try:
        if extend:
            the_run.folder.write_json(CONFIG, config.to_dict())
        write_record(the_run.folder, options, key_path, key)
    except BaseException:
        server.close()
        raise
    return the_run, server, book


def _finished(the_run, out, print_summary) -> int:
    """A resumed run with no round left: say so (writing the summary if a crash lost it)."""
    if not (out / SUMMARY).is_file():
        print_summary(the_run.finish(), out)
    print(f"fedzo coordinator: the run in {out} is finished ({the_run.config.rounds} rounds; "
          f"summary in {out / SUMMARY}); --rounds N with N > {the_run.config.rounds} extends it")
    return 0
