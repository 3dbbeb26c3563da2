"""`fedzo pretrain --task NAME`: train a starting actor with ARS on the true reward."""
import json
import time

from fedzo.coordinator.run.evaluate import returns_at_time_limit, summarise
from fedzo.coordinator.tools.pretrain import ARSSettings, pretrain
from fedzo.edge.learning import streams
from fedzo.edge.learning.fixedpoint import ParameterStore
from fedzo.edge.learning.layout import format_hidden, parse_hidden
from fedzo.edge.tasks import TASK_NAMES, make

EVAL_EPISODES = 20


def add_arguments(parser):
    defaults = ARSSettings()
    parser.add_argument("--task", required=True, metavar="TASK",
                        help=f"the task to train an actor for: {', '.join(TASK_NAMES)}, or a user's task "
                             f"(package.module:Class, a fedzo.tasks entry point, robot.xml; docs/tasks.md)")
    parser.add_argument("--iterations", type=int, default=defaults.iterations,
                        help=f"ARS updates (default {defaults.iterations})")
    parser.add_argument("--directions", type=int, default=defaults.directions,
                        help=f"random directions tried per update, each both ways (default {defaults.directions})")
    parser.add_argument("--top", type=int, default=defaults.top,
                        help=f"best directions that make the update, at most --directions (default {defaults.top})")
    parser.add_argument("--step", type=float, default=defaults.step,
                        help=f"step size of an update (default {defaults.step})")
    parser.add_argument("--noise", type=float, default=defaults.noise,
                        help=f"size of the exploration perturbations (default {defaults.noise})")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help=f"seed of the directions and episodes (default {defaults.seed})")
    parser.add_argument("--workers", type=int, default=defaults.workers,
                        help=f"processes that run the episodes (default {defaults.workers})")
    parser.add_argument("--hidden", default=format_hidden(defaults.hidden),
                        help=f"the policy's hidden tanh layers, widths separated by commas "
                             f"(default {format_hidden(defaults.hidden)}); a run of it sets the same hidden")
    parser.add_argument("--out", required=True, help="where to write the actor (.npz)")


def quantised_check(actor, task, seeds) -> dict:
    """True return of the actor in float32 and after the int16 store round trip."""
    low, high = task.model.actuator_ctrlrange.T
    float_returns = returns_at_time_limit(task, actor.policy(low, high), seeds)
    store = ParameterStore.from_float(actor.theta)
    policy = actor.policy(low, high)
    policy.refresh(store)
    quant_returns = returns_at_time_limit(task, policy, seeds)
    change = abs(quant_returns.mean() - float_returns.mean()) / abs(float_returns.mean())
    return {"float": summarise(float_returns), "quantised": summarise(quant_returns),
            "frac_bits": store.fmt.frac_bits, "relative_change": float(change)}


def run(args) -> int:
    try:
        hidden = parse_hidden(args.hidden)
    except ValueError as exc:
        raise SystemExit(f"fedzo pretrain: --hidden {exc}")
    settings = ARSSettings(args.iterations, args.directions, args.top, args.step, args.noise,
                           args.seed, args.workers, hidden)
    if not 1 <= settings.top <= settings.directions:
        raise SystemExit("fedzo pretrain: --top must be between 1 and --directions")
    try:
        task = make(args.task)       # a user's task that cannot be built: one line, before any work
    except ValueError as exc:
        raise SystemExit(f"fedzo pretrain: {exc}")
    started = time.perf_counter()
    actor = pretrain(args.task, settings)
    check = quantised_check(actor, task, streams.eval_seeds(0, EVAL_EPISODES))
    actor.info.update({"eval": check, "total_seconds": round(time.perf_counter() - started, 1)})
    actor.save(args.out)
    print(json.dumps(actor.info, indent=2))
    return 0
