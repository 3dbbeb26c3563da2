"""`fedzo eval`: true return over evaluation episodes, of an actor file or of a run's theta.

    fedzo eval --task NAME [--policy PATH]    an actor, in float32 and quantised
    fedzo eval --policy PATH                  the same, for the actor file's own task
    fedzo eval --run RUN_DIR                  a run folder's latest checkpoint beside its start
    fedzo eval --run RUN_DIR --html FILE      ... and a page that replays both on the same episodes

Episodes run to the task's own time limit; for a run, each episode's length
shows whether (and when) the policy falls before it.
"""
import sys
from pathlib import Path

import numpy as np

from fedzo.coordinator.commands.pretrain import quantised_check
from fedzo.coordinator.run.folder import CHECKPOINT, CONFIG
from fedzo.coordinator.run.trained import NotARunFolder, load_trained
from fedzo.edge.learning import streams
from fedzo.edge.learning.algorithm import ACTOR_DIR, initial_store, load_actor
from fedzo.edge.learning.config import ConfigError
from fedzo.edge.policy.mlp import Actor
from fedzo.edge.policy.rollout import run_episode
from fedzo.edge.tasks import TASK_NAMES, make
from fedzo.edge.tasks.plugins import task_name


REPLAY_EPISODES = 3      # episodes an --html page replays (each side's clips are in the file)


def add_arguments(parser):
    parser.add_argument("--task", metavar="TASK",
                        help=f"the task of the actor (not with --run): {', '.join(TASK_NAMES)}, or a user's "
                             f"task spec (docs/tasks.md; needed with --policy for a user's task)")
    parser.add_argument("--policy", help="an actor .npz file, e.g. from fedzo pretrain or fedzo export "
                                         "(default: the packaged actor of --task)")
    parser.add_argument("--run", help="a run folder: evaluate its checkpoint's theta beside the run's start")
    parser.add_argument("--html", metavar="FILE",
                        help="with --run: write an HTML page that replays the first episodes (at most 3) "
                             "under the start (left) and the trained theta (right), drawn as the comparison "
                             "page draws them")
    parser.add_argument("--episodes", type=int, default=20, help="evaluation episodes (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the evaluation episodes (default 0)")


def run(args) -> int:
    if args.episodes < 1:
        raise SystemExit("fedzo eval: --episodes must be at least 1")
    if args.run:
        if args.task or args.policy:
            raise SystemExit("fedzo eval: --run takes its task and policy from the run folder")
        return evaluate_run(Path(args.run), args.episodes, args.seed, args.html)
    if args.html:
        raise SystemExit("fedzo eval: --html replays a run: give it with --run RUN_DIR")
    if not args.task and not args.policy:
        raise SystemExit("fedzo eval: give --task, --policy ACTOR_FILE or --run RUN_DIR")
    path = Path(args.policy) if args.policy else ACTOR_DIR / f"{args.task}.npz"
    if path.is_dir() or (path.name == CHECKPOINT and (path.parent / CONFIG).is_file()):
        folder = path if path.is_dir() else path.parent
        raise SystemExit(f"fedzo eval: {path} is a run, not an actor file: fedzo eval --run {folder} scores "
                         f"it, fedzo export {folder} --out policy.npz makes an actor file of it")
    try:
        actor = Actor.load(path)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"fedzo eval: {exc}")
    spec = args.task or actor.task
    try:
        task = make(spec)
        expected = task_name(spec)
    except ValueError as exc:
        if not args.task and actor.task not in TASK_NAMES:
            raise SystemExit(f"fedzo eval: {path} is an actor for {actor.task}, not a built-in task: "
                             f"give --task with its spec (package.module:Class or robot.xml)")
        raise SystemExit(f"fedzo eval: {exc}")
    if actor.task != expected:
        raise SystemExit(f"fedzo eval: {path} is an actor for {actor.task}, not {expected}")
    check = quantised_check(actor, task, streams.eval_seeds(args.seed, args.episodes))
    for name in ("float", "quantised"):
        s = check[name]
        print(f"{actor.task} {name:>9}: return {s['mean']:.1f} ± {s['std']:.1f} "
              f"(min {s['min']:.1f}, max {s['max']:.1f}, {s['episodes']} episodes)")
    print(f"quantised to int16 with {check['frac_bits']} fraction bits: "
          f"return changes by {100 * check['relative_change']:.3f} %")
    return 0


def evaluate_run(folder: Path, episodes: int, seed: int, html=None) -> int:
    """Print the start's and the checkpoint's return and episode lengths on the same episodes
    (and, with `html`, write a page replaying the first of them side by side)."""
    try:
        config, trained, next_round = load_trained(folder)
        task = make(config.task)
        actor = load_actor(config)
    except NotARunFolder as exc:
        print(f"fedzo eval: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, ConfigError, OSError) as exc:
        print(f"fedzo eval: {folder}: {exc}", file=sys.stderr)
        return 2
    low, high = task.model.actuator_ctrlrange.T
    seeds = streams.eval_seeds(seed, episodes)
    stores = {"start": initial_store(config, actor), f"round {next_round}": trained}
    print(f"{folder}: {config.algo} on {config.task}, K = {config.agents}, trained at {min(config.horizon, task.max_episode_steps)} steps; "
          f"{episodes} episodes to the {task.max_episode_steps}-step limit")
    for name, store in stores.items():
        policy = actor.policy(low, high)
        policy.refresh(store)
        results = np.array([run_episode(task, policy, s) for s in seeds])
        returns, lengths = results[:, 0], results[:, 1].astype(int)
        se = returns.std(ddof=1) / np.sqrt(episodes) if episodes > 1 else 0.0
        fell = int(np.count_nonzero(lengths < task.max_episode_steps))
        print(f"{name:>10}: return {returns.mean():.1f} ± {se:.1f} (standard error); episodes end at steps "
              f"{lengths.min()}-{lengths.max()} (median {int(np.median(lengths))}); "
              f"{fell} of {episodes} end before the limit")
    if html:
        return _write_replay(Path(html), folder, config, task, actor, stores, seeds[:REPLAY_EPISODES])
    return 0


def _write_replay(path: Path, folder, config, task, actor, stores, seeds) -> int:
    """The start (left) and the trained theta (right) on the same episodes, as one HTML page."""
    from fedzo.coordinator.tools.replay_page import record, write_replay
    low, high = task.model.actuator_ctrlrange.T
    sides = []
    for name, store in stores.items():
        policy = actor.policy(low, high)
        policy.refresh(store)
        clips, returns, scene = record(task, policy, seeds)
        sides.append((f"{name}: return {np.mean(returns):.1f}", clips))
    title = f"{config.task}: the run's start beside its trained theta, {list(stores)[1]} ({folder})"
    try:
        write_replay(path, title, (sides[0][0], sides[1][0]), scene, sides[0][1], sides[1][1])
    except OSError as exc:
        print(f"fedzo eval: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"{path}: {len(seeds)} episode(s), start on the left, {list(stores)[1]} on the right")
    return 0
