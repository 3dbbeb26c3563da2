"""`fedzo bench kernel|rollout|link|human|ray|fleet [--json]`: speed (and the page's cost) measured in one run.

It lives beside the command table because its benches come from both sides:
kernel and rollout from fedzo.edge.bench, link, human and fleet from fedzo.coordinator.tools.
"""
import json
import sys

BENCHES = ("kernel", "rollout", "link", "human", "ray", "fleet")


def add_arguments(parser):
    from fedzo.edge.tasks import TASK_NAMES
    parser.add_argument("what", choices=BENCHES, help="what to measure")
    parser.add_argument("--json", action="store_true", help="print one JSON list of records")
    parser.add_argument("--huge", action="store_true",
                        help="kernel: also measure d = 100 000 000 (needs about 1 GB)")
    parser.add_argument("--task", choices=TASK_NAMES,
                        help="rollout: measure only this task (default: all four); human: the task "
                             "(default hopper)")
    parser.add_argument("--tcp", action="store_true",
                        help="link: only the TCP cases, with the kernel's segment counts per round")
    parser.add_argument("--agents", metavar="N,N,...", default="100,1000,5000",
                        help="fleet: the numbers of agents to measure (default 100,1000,5000)")
    parser.add_argument("--blocks", type=int, default=0, metavar="K",
                        help="fleet: K blocks for every n (a result then carries K votes, not n; "
                             "default: K = n)")
    parser.add_argument("--workers", type=int, default=None,
                        help="rollout: the N of the round table (a round's episodes on N workers against N "
                             "processes of bare mj_step; default: the usable cores)")
    parser.add_argument("--answers", metavar="FILE",
                        help="human: instead, how long a person took over the answers in FILE")


def run(args) -> int:
    if args.what == "kernel":
        from fedzo.edge.bench import kernel as bench_kernel
        records = bench_kernel.run(huge=args.huge)
        print(json.dumps(records) if args.json else bench_kernel.format_table(records))
    elif args.what == "rollout":
        from fedzo.edge.bench import rollout as bench_rollout
        from fedzo.edge.tasks import TASK_NAMES
        from fedzo.edge.bench import rounds as bench_rounds
        from fedzo.edge.policy.workers import check_workers
        try:
            workers = None if args.workers is None else check_workers(args.workers)
        except ValueError as exc:
            print(f"fedzo bench: {exc}", file=sys.stderr)
            return 2
        records = bench_rollout.run([args.task] if args.task else TASK_NAMES)
        # then a round's episodes on 1 and N workers (issue 15): the last record, "kind": "round"
        round_record = dict(bench_rounds.measure(args.task or "hopper", workers), kind="round")
        if args.json:
            print(json.dumps(records + [round_record]))
        else:
            print(bench_rollout.format_table(records))
            print()
            print(bench_rounds.format_table(round_record))
    elif args.what == "link":
        from fedzo.coordinator.tools import bench_link
        records = bench_link.run(log=lambda msg: print(msg, file=sys.stderr, flush=True), tcp_only=args.tcp)
        print(json.dumps(records) if args.json else bench_link.format_table(records))
    elif args.what == "fleet":
        from fedzo.coordinator.tools import bench_fleet
        try:
            counts = [int(n) for n in args.agents.split(",")]
        except ValueError:
            print(f"fedzo bench fleet: --agents takes numbers separated by commas, not {args.agents!r}",
                  file=sys.stderr)
            return 2
        if not counts or min(counts) < 1:
            print("fedzo bench fleet: --agents needs at least one number, each 1 or more", file=sys.stderr)
            return 2
        if args.blocks < 0 or (args.blocks and args.blocks > min(counts)):
            print(f"fedzo bench fleet: --blocks must be between 1 and the smallest n ({min(counts)}), "
                  f"got {args.blocks}", file=sys.stderr)
            return 2
        records = bench_fleet.run(counts, log=lambda msg: print(msg, file=sys.stderr, flush=True),
                                  blocks=args.blocks)
        print(json.dumps(records) if args.json else bench_fleet.format_table(records))
    elif args.what == "human":
        from fedzo.coordinator.tools import bench_human
        if args.answers:
            try:
                times = bench_human.answer_times(args.answers)
            except (OSError, ValueError) as exc:
                print(f"fedzo bench human: {exc}", file=sys.stderr)
                return 2
            print(json.dumps(times) if args.json else bench_human.format_times(times))
            return 0
        record = bench_human.run(args.task or "hopper", log=lambda msg: print(msg, file=sys.stderr, flush=True))
        print(json.dumps(record) if args.json else bench_human.format_record(record))
    elif args.what == "ray":
        return _bench_ray(args)
    return 0


def _bench_ray(args) -> int:
    """Ray against the process pool and the in-process link (needs the ray extra)."""
    from fedzo.coordinator.cluster.connect import RayMissing, require_ray
    try:
        require_ray()
    except RayMissing as exc:
        print(f"fedzo bench ray: {exc}", file=sys.stderr)
        return 2
    from fedzo.coordinator.cluster import bench as bench_ray
    records = bench_ray.run(log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(json.dumps(records) if args.json else bench_ray.format_table(records))
    return 0
