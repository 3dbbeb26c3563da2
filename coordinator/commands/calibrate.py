"""`fedzo calibrate`: measure the return differences that set the panel scale c, and
(with --accuracy) how often what an agent is shown points the way a better estimate does."""
import json
import sys

from fedzo.coordinator.run.trained import load_trained
from fedzo.coordinator.tools.calibrate import calibrate, vote_accuracy
from fedzo.edge.learning.config import COMPARISONS, ConfigError, RunConfig
from fedzo.edge.tasks import TASK_NAMES


def add_arguments(parser):
    parser.add_argument("--task", action="append", metavar="TASK",
                        help=f"task(s): {', '.join(TASK_NAMES)} (default: all four) or a user's task spec "
                             f"(docs/tasks.md), which needs --actor")
    parser.add_argument("--actor", default="", help="the starting actor (.npz; default: the task's packaged one)")
    parser.add_argument("--hidden", default=None, help="the actor's hidden sizes, e.g. 32,32 (default 64,64)")
    parser.add_argument("--samples", type=int, default=40, help="perturbations measured per task")
    parser.add_argument("--accuracy", action="store_true",
                        help="measure vote accuracy instead: how often the D-episode comparison (and the "
                             "panel) agrees with the sign seen on --reference-episodes other episodes")
    parser.add_argument("--horizon", type=int, default=None, help="--accuracy: episode length (default 1000)")
    parser.add_argument("--batch", type=int, default=None, help="--accuracy: D, episodes per batch (default 2)")
    parser.add_argument("--comparisons", type=int, default=None,
                        help="--accuracy: N, comparisons per vote (the vote is the sign of their sum; default 1)")
    parser.add_argument("--mu", type=float, default=None, help="perturbation size (default: the run default)")
    parser.add_argument("--comparison", choices=COMPARISONS, default=None,
                        help="--accuracy: what theta + mu v is compared with: theta (one-sided, the paper's "
                             "and the default) or theta - mu v (symmetric)")
    parser.add_argument("--reference-episodes", type=int, default=16,
                        help="--accuracy: episodes of the reference comparison (default 16)")
    parser.add_argument("--run", metavar="RUN_DIR",
                        help="--accuracy: measure at the run's last checkpoint (its trained theta) with the run's "
                             "task, horizon, D, N, mu and K; --horizon, --batch, --comparisons, --mu and --comparison "
                             "override them")


def _accuracy_config(args, task, run_config=None) -> RunConfig:
    """The measured setting: the run's (or the defaults), with the options given on top."""
    fields = run_config.to_dict() if run_config else {"task": task, "horizon": 1000, "batch": 2,
                                                      "actor": args.actor}
    for name in ("horizon", "batch", "comparisons", "mu", "comparison", "hidden"):
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    return RunConfig.from_dict(fields)


def run(args) -> int:
    if args.run and not args.accuracy:
        print("fedzo calibrate: --run measures vote accuracy; add --accuracy", file=sys.stderr)
        return 2
    try:
        if args.run:
            run_config, store, _ = load_trained(args.run)
            config = _accuracy_config(args, run_config.task, run_config)
            print(json.dumps({"run": args.run, **vote_accuracy(config, args.samples, args.reference_episodes, store)}))
            return 0
        for task in args.task or TASK_NAMES:
            if args.accuracy:
                config = _accuracy_config(args, task)
                print(json.dumps(vote_accuracy(config, args.samples, args.reference_episodes)))
            else:
                print(json.dumps(calibrate(task, args.samples, args.actor, args.hidden or "64,64", args.mu)))
    except (ConfigError, FileNotFoundError, ValueError, OSError) as exc:
        print(f"fedzo calibrate: {exc}", file=sys.stderr)
        return 2
    return 0
