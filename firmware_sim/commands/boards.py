"""`fedzo boards [--json]`: the simulated board profiles."""
import json

from fedzo.firmware_sim.profiles import DEFAULT_PROFILE, PROFILES


def add_arguments(parser):
    parser.add_argument("--json", action="store_true", help="print one JSON list of profiles")


def format_table(profiles) -> str:
    """The profiles as an aligned text table."""
    rows = [("board", "RAM", "link", "CPU", "description")]
    for p in profiles:
        cpu = "as this machine" if p.cpu_factor == 1 else f"{p.cpu_factor:g}x slower"
        rows.append((p.name + (" (default)" if p.name == DEFAULT_PROFILE else ""), f"{p.ram_mb} MB",
                     p.link_text(), cpu, p.description))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
    lines.append("")
    lines.append("use: fedzo simulate --link serial --board NAME [--cpu-factor F] [--ram-mb MB] "
                 "[--baud B] [--faults drop=0.005,flip=0.005,seed=1]")
    return "\n".join(lines)


def run(args) -> int:
    profiles = list(PROFILES.values())
    if args.json:
        print(json.dumps([p.to_dict() for p in profiles]))
    else:
        print(format_table(profiles))
    return 0
