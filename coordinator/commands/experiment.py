"""`fedzo experiment CONFIG --out DIR`: run a grid of runs (resumable)."""
import sys

from fedzo.coordinator.analysis.experiment import (
    ExperimentFailed,
    cells,
    load_experiment,
    run_experiment,
)
from fedzo.coordinator.cluster.connect import RayUnavailable
from fedzo.edge.learning.config import ConfigError


def add_arguments(parser):
    parser.add_argument("experiment", help="experiment file (JSON), e.g. experiments/paper.json")
    parser.add_argument("--out", required=True, help="folder for the runs (re-run to resume)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    parser.add_argument("--full-scale", action="store_true", help="apply the file's full_scale overrides")
    parser.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="run each cell as a Ray task: on a local Ray started now (--workers CPUs), "
                             "or on the cluster at ADDRESS (needs: pip install 'fedzo[ray]'; docs/cluster.md)")


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
        if args.ray is not None:
            _run_on_ray(spec, args)
        else:
            run_experiment(spec, args.out, workers=args.workers)
    except RayUnavailable as exc:
        print(f"fedzo experiment: --ray: {exc}", file=sys.stderr)
        return 2
    except ExperimentFailed as exc:
        print(f"fedzo experiment: {exc}\nre-run the same command to retry them", file=sys.stderr)
        return 1
    print(f"done; `fedzo report {args.out}` writes the report")
    return 0


def _run_on_ray(spec, args):
    """The grid's cells as Ray tasks (coordinator/cluster/grid.py)."""
    from fedzo.coordinator.cluster.grid import run_experiment_ray
    run_experiment_ray(spec, args.out, address=None if args.ray == "local" else args.ray, workers=args.workers)
