"""`fedzo eval --task NAME [--policy PATH]`: true return over evaluation episodes."""
from pathlib import Path

from fedzo.coordinator.commands.pretrain import quantised_check
from fedzo.edge.learning import streams
from fedzo.edge.learning.algorithm import ACTOR_DIR
from fedzo.edge.policy.mlp import Actor
from fedzo.edge.tasks import TASK_NAMES, make


def add_arguments(parser):
    parser.add_argument("--task", required=True, choices=TASK_NAMES)
    parser.add_argument("--policy", help="an actor .npz file (default: the packaged actor)")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="seed of the evaluation episodes")


def run(args) -> int:
    path = Path(args.policy) if args.policy else ACTOR_DIR / f"{args.task}.npz"
    try:
        actor = Actor.load(path)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"fedzo eval: {exc}")
    if actor.task != args.task:
        raise SystemExit(f"fedzo eval: {path} is an actor for {actor.task}, not {args.task}")
    if args.episodes < 1:
        raise SystemExit("fedzo eval: --episodes must be at least 1")
    check = quantised_check(actor, make(args.task), streams.eval_seeds(args.seed, args.episodes))
    for name in ("float", "quantised"):
        s = check[name]
        print(f"{args.task} {name:>9}: return {s['mean']:.1f} ± {s['std']:.1f} "
              f"(min {s['min']:.1f}, max {s['max']:.1f}, {s['episodes']} episodes)")
    print(f"quantised to int16 with {check['frac_bits']} fraction bits: "
          f"return changes by {100 * check['relative_change']:.3f} %")
    return 0
