"""`fedzo export RUN_DIR --out policy.npz`: a run's trained theta as an actor file.

The file is an ordinary actor (`fedzo.edge.policy.mlp.Actor`): `fedzo eval --policy`
scores it and a new run starts from it with `actor` (coordinator/run/export.py
says how an earlier round's theta is rebuilt and what the file records).
"""
import sys
from pathlib import Path

from fedzo.coordinator.run.export import trained_actor
from fedzo.coordinator.run.trained import NotARunFolder
from fedzo.edge.learning.config import ConfigError


def add_arguments(parser):
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (as written by --out)")
    parser.add_argument("--out", required=True, help="the actor file to write (.npz)")
    parser.add_argument("--round", type=int, default=None,
                        help="theta after this round (numbered from 0; default: the last checkpoint)")


def run(args) -> int:
    out = Path(args.out)
    if out.suffix != ".npz":
        print(f"fedzo export: --out must name a .npz file, got {out}", file=sys.stderr)
        return 2
    try:
        actor = trained_actor(Path(args.run_dir), args.round)
    except (FileNotFoundError, ValueError, ConfigError, OSError) as exc:   # NotARunFolder too
        prefix = "" if isinstance(exc, NotARunFolder) or str(args.run_dir) in str(exc) else f"{args.run_dir}: "
        print(f"fedzo export: {prefix}{exc}", file=sys.stderr)
        return 2
    try:
        actor.save(out)
    except OSError as exc:
        print(f"fedzo export: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    info = actor.info
    print(f"{out}: {actor.task} actor, hidden {','.join(map(str, actor.hidden))}, d = {actor.theta.size}, "
          f"theta after {info['rounds_done']} rounds of {args.run_dir} (hash {info['theta_hash']}; "
          f"store {info['store']['dtype']} 2^-{info['store']['frac_bits']})")
    return 0
