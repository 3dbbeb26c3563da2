"""`fedzo coordinator [--listen HOST:PORT] [--serial PORT[,PORT...]]`: serve a run to agents.

TCP agents and serial ports are served by one loop (coordinator/transports/server.py).
Without --serial the coordinator listens on 0.0.0.0:7700; with --serial it
listens on TCP only if --listen is given.
"""
import sys
from pathlib import Path

from fedzo.coordinator.commands.run_options import add_run_arguments, config_from_args
from fedzo.coordinator.commands.simulate import default_out
from fedzo.coordinator.run.folder import CONFIG, RUN_KEY, RunFolder
from fedzo.edge.learning.config import ConfigError, RunConfig
from fedzo.edge.links.address import parse_address
from fedzo.edge.protocol.keyfile import read_key_file, write_key_file


def add_arguments(parser):
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
    parser.add_argument("--out", help="run folder (default: runs/<algo>-<task>-<time>)")
    parser.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its checkpoint")
    parser.add_argument("--round-timeout", type=float, default=120.0,
                        help="seconds a round waits for missing votes (they count 0)")
    parser.add_argument("--join-timeout", type=float, default=None,
                        help="start with --quorum agents if not all K joined after this many seconds")
    parser.add_argument("--quorum", type=int, default=None, help="agents enough to start at the join timeout")


def run(args) -> int:
    from fedzo.coordinator.run.lifecycle import Run
    from fedzo.coordinator.run.summary_text import print_summary
    from fedzo.coordinator.transports.server import Server
    from fedzo.edge.links.serial_link import (
        DEFAULT_BAUD,
        DEFAULT_FRAGMENT_BYTES,
        DEFAULT_LINK_TIMEOUT,
        SerialLinkError,
    )
    try:
        if args.resume:
            out = Path(args.resume)
            config = RunConfig.from_dict(RunFolder(out).read_json(CONFIG))
        else:
            config = config_from_args(args)
            out = Path(args.out) if args.out else default_out(config)
        serial = [p.strip() for p in args.serial.split(",") if p.strip()] if args.serial else []
        if args.serial is not None and not serial:
            raise ValueError("--serial needs at least one port")
        if len(set(serial)) != len(serial):
            raise ValueError("--serial names a port twice")
        if not serial and any(v is not None for v in (args.baud, args.fragment, args.link_timeout)):
            raise ValueError("--baud, --fragment and --link-timeout apply to --serial only")
        listen = args.listen if args.listen is not None else (None if serial else "0.0.0.0:7700")
        address = parse_address(listen) if listen is not None else None
        key_path = Path(args.key_file) if args.key_file else out / RUN_KEY
        key = read_key_file(key_path) if key_path.exists() else write_key_file(key_path)
        if args.quorum is not None and not 1 <= args.quorum <= config.agents:
            raise ConfigError(f"--quorum must be between 1 and {config.agents}")
        the_run = Run(config, out, resume=bool(args.resume), round_timeout=args.round_timeout,
                      join_timeout=args.join_timeout, quorum=args.quorum)
        server = Server(the_run, key, listen=address, serial=serial, baud=args.baud or DEFAULT_BAUD,
                        fragment=args.fragment or DEFAULT_FRAGMENT_BYTES,
                        link_timeout=args.link_timeout or DEFAULT_LINK_TIMEOUT)
    except (ConfigError, ValueError, OSError, SerialLinkError) as exc:
        print(f"fedzo coordinator: {exc}", file=sys.stderr)
        return 2
    print(f"run key in {key_path}; waiting for {config.agents} agents")
    if address is not None:
        bound = server.address
        print(f"listening on {bound[0]}:{bound[1]}; start agents with: "
              f"fedzo agent --connect <this host>:{bound[1]} --key-file {key_path.name}")
    for port in serial:
        print(f"serving serial port {port} at {args.baud or DEFAULT_BAUD} baud; on the board: "
              f"fedzo agent --serial <its port> --baud {args.baud or DEFAULT_BAUD} --key-file {key_path.name}")
    server.serve()
    print_summary(the_run.finish(), out)
    return 0
