"""`fedzo calibrate`: measure the return differences that set the panel scale c, and
(with --accuracy) how often what an agent is shown points the way a better estimate does."""
import json
import sys

from fedzo.coordinator.tools.calibrate import calibrate, vote_accuracy
from fedzo.edge.learning.config import ConfigError, RunConfig
from fedzo.edge.tasks import TASK_NAMES


def add_arguments(parser):
    parser.add_argument("--task", choices=TASK_NAMES, action="append", help="task(s) (default: all four)")
    parser.add_argument("--samples", type=int, default=40, help="perturbations measured per task")
    parser.add_argument("--accuracy", action="store_true",
                        help="measure vote accuracy instead: how often the D-episode comparison (and the "
                             "panel) agrees with the sign seen on --reference-episodes other episodes")
    parser.add_argument("--horizon", type=int, default=1000, help="--accuracy: episode length (default 1000)")
    parser.add_argument("--batch", type=int, default=2, help="--accuracy: D, episodes per batch (default 2)")
    parser.add_argument("--mu", type=float, default=None, help="--accuracy: perturbation size (default: the run default)")
    parser.add_argument("--reference-episodes", type=int, default=16,
                        help="--accuracy: episodes of the reference comparison (default 16)")


def run(args) -> int:
    for task in args.task or TASK_NAMES:
        if args.accuracy:
            fields = {"task": task, "horizon": args.horizon, "batch": args.batch}
            if args.mu is not None:
                fields["mu"] = args.mu
            try:
                config = RunConfig(**fields)
            except ConfigError as exc:
                print(f"fedzo calibrate: {exc}", file=sys.stderr)
                return 2
            print(json.dumps(vote_accuracy(config, args.samples, args.reference_episodes)))
        else:
            print(json.dumps(calibrate(task, args.samples)))
    return 0
