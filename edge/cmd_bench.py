"""`fedzo bench kernel|rollout|link [--json]`: speed measured as ratios in one run."""
import json

BENCHES = ("kernel",)


def add_arguments(parser):
    parser.add_argument("what", choices=BENCHES, help="what to measure")
    parser.add_argument("--json", action="store_true", help="print one JSON list of records")
    parser.add_argument("--huge", action="store_true",
                        help="kernel: also measure d = 100 000 000 (needs about 1 GB)")


def run(args) -> int:
    if args.what == "kernel":
        from edge import bench_kernel
        records = bench_kernel.run(huge=args.huge)
        print(json.dumps(records) if args.json else bench_kernel.format_table(records))
    return 0
