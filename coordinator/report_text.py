"""The end-of-run summary as text: returns, work, bytes and memory."""


def _mib(x):
    return "-" if x is None else f"{x / 2**20:.1f} MiB"


def print_summary(summary: dict, out_dir) -> None:
    """Print what a user wants to see when a run ends."""
    s = summary
    K, d = s["agents"], s["d"]
    print()
    print(f"=== {s['algo']} on {s['task']}: K = {K}, {s['rounds']} rounds, d = {d} ===")
    change = s["return_final"] - s["return_initial"]
    print(f"true return: {s['return_initial']:.1f} -> {s['return_final']:.1f} ({change:+.1f})")
    print(f"work: {s['episodes']} episodes, {s['env_steps']} env steps, {s['comparisons']} comparisons "
          f"(human queries), {s['wall_seconds']:.0f} s")
    print(f"bytes per agent per round: up {s['bytes_per_agent_per_round_up']:.1f} B, "
          f"down {s['bytes_per_agent_per_round_down']:.1f} B (frames incl. framing, header and tag)")
    paper_bytes = s["paper_bits_per_update"] / 8
    print(f"  for comparison: the paper's d + K = {s['paper_bits_per_update']} bits = {paper_bytes:.0f} B "
          f"per update; FedAvg's float32 model = {s['fedavg_float32_bytes_per_agent_per_round']} B "
          f"each way per agent per round")
    print(f"{'agent':>5} {'up B':>9} {'down B':>9} {'peak RSS':>11} {'floor':>11} {'learning state':>15}")
    for a in s["per_agent"]:
        state = "-" if a["learning_state_bytes"] is None else f"{a['learning_state_bytes']} B"
        print(f"{a['id']:>5} {a['bytes_up']:>9} {a['bytes_down']:>9} {_mib(a['peak_rss_bytes']):>11} "
              f"{_mib(a['floor_rss_bytes']):>11} {state:>15}")
    print(f"run folder: {out_dir}")
