"""`fedzo experiment CONFIG --out DIR`: run a grid of runs (resumable)."""
import sys

from fedzo.coordinator.analysis.experiment import (
    ExperimentFailed,
    cells,
    load_experiment,
    run_experiment,
)
from fedzo.edge.learning.config import ConfigError


def add_arguments(parser):
    parser.add_argument("experiment", help="experiment file (JSON), e.g. experiments/paper.json")
    parser.add_argument("--out", required=True, help="folder for the runs (re-run to resume)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    parser.add_argument("--full-scale", action="store_true", help="apply the file's full_scale overrides")
    parser.add_argument("--dry-run", action="store_true", help="list the runs and exit")


def run(args) -> int:
    try:
        spec = load_experiment(args.experiment, full_scale=args.full_scale)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"fedzo experiment: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        for cell in cells(spec):
            c = cell["config"]
            print(f"{cell['folder']}: {c.algo} {c.task} K={c.agents} T={c.rounds} "
                  f"({c.episodes_per_round * c.rounds} episodes)")
        return 0
    try:
        run_experiment(spec, args.out, workers=args.workers)
    except ExperimentFailed as exc:
        print(f"fedzo experiment: {exc}\nre-run the same command to retry them", file=sys.stderr)
        return 1
    print(f"done; `fedzo report {args.out}` writes the report")
    return 0
