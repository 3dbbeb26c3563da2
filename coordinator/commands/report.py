"""`fedzo report DIR`: the Markdown report (and PNG plots) of an experiment's runs."""
import sys

from fedzo.coordinator.analysis.report import write_report


def add_arguments(parser):
    parser.add_argument("runs", help="folder holding run folders (an experiment's --out)")
    parser.add_argument("--out", help="report file (default: DIR/REPORT.md; plots beside it)")
    parser.add_argument("--title", help="report title (default: the folder's name)")


def run(args) -> int:
    try:
        path = write_report(args.runs, args.out, args.title)
    except FileNotFoundError as exc:
        print(f"fedzo report: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
