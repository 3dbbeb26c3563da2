"""`fedzo coordinator --listen HOST:PORT`: serve a run to agents over TCP."""
import sys
from pathlib import Path

from coordinator.cmd_simulate import default_out
from coordinator.runconfig_args import add_run_arguments, config_from_args
from coordinator.runfolder import CONFIG, RunFolder
from edge.config import ConfigError, RunConfig
from edge.keyfile import read_key_file, write_key_file
from edge.tcp_agent import parse_address


def add_arguments(parser):
    add_run_arguments(parser)
    parser.add_argument("--listen", default="0.0.0.0:7700", metavar="HOST:PORT",
                        help="address to accept agents on (default 0.0.0.0:7700)")
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
    from coordinator.report_text import print_summary
    from coordinator.run import Run
    from coordinator.tcp import TcpServer
    try:
        if args.resume:
            out = Path(args.resume)
            config = RunConfig.from_dict(RunFolder(out).read_json(CONFIG))
        else:
            config = config_from_args(args)
            out = Path(args.out) if args.out else default_out(config)
        host, port = parse_address(args.listen)
        key_path = Path(args.key_file) if args.key_file else out / "run.key"
        key = read_key_file(key_path) if key_path.exists() else write_key_file(key_path)
        if args.quorum is not None and not 1 <= args.quorum <= config.agents:
            raise ConfigError(f"--quorum must be between 1 and {config.agents}")
        the_run = Run(config, out, resume=bool(args.resume), round_timeout=args.round_timeout,
                      join_timeout=args.join_timeout, quorum=args.quorum)
        server = TcpServer(the_run, key, (host, port))
    except (ConfigError, ValueError, OSError) as exc:
        print(f"fedzo coordinator: {exc}", file=sys.stderr)
        return 2
    bound = server.address
    print(f"listening on {bound[0]}:{bound[1]}; run key in {key_path}; waiting for {config.agents} agents")
    print(f"start agents with: fedzo agent --connect <this host>:{bound[1]} --key-file {key_path.name}")
    server.serve()
    print_summary(the_run.finish(), out)
    return 0
