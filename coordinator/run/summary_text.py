"""The end-of-run summary as text: returns, work, bytes and memory."""


def _mib(x):
    return "-" if x is None else f"{x / 2**20:.1f} MiB"


def print_returns(s: dict, label="true return") -> None:
    """The headline: the return at the task's own time limit, before and after, with standard errors."""
    print(f"{label} at the task's {s['eval_horizon']}-step limit ({s['eval_episodes']} evaluation episodes): "
          f"{s['return_initial']:.1f} ± {s['return_initial_se']:.1f} -> {s['return_final']:.1f} ± "
          f"{s['return_final_se']:.1f} (gain {s['gain']:+.1f} ± {s['gain_se']:.1f}, ± = standard error)")
    if "return_final_train_horizon" in s:
        change = s["return_final_train_horizon"] - s["return_initial_train_horizon"]
        print(f"  at the {s['train_horizon']}-step training horizon: {s['return_initial_train_horizon']:.1f} -> "
              f"{s['return_final_train_horizon']:.1f} ({change:+.1f})")


def print_summary(summary: dict, out_dir) -> None:
    """Print what a user wants to see when a run ends."""
    s = summary
    K, d = s["agents"], s["d"]
    print()
    print(f"=== {s['algo']} on {s['task']}: K = {K}, {s['rounds']} rounds, d = {d} ===")
    print_returns(s)
    reported = s.get("agents_reported", K)
    steps = f"{s['env_steps']} env steps" + (f" (reports of {reported} of {K} agents)" if reported < K else "")
    print(f"work: {s['episodes']} episodes, {steps}, {s['comparisons']} comparisons "
          f"(human queries), {s['wall_seconds']:.0f} s")
    print(f"bytes per agent per round: up {s['bytes_per_agent_per_round_up']:.1f} B, "
          f"down {s['bytes_per_agent_per_round_down']:.1f} B (frames incl. framing, header and tag)")
    headers = [a for a in s["per_agent"] if a.get("tcp_ip_header_bytes_up") is not None]
    if headers:
        rounds = max(1, s["rounds"])
        up = sum(a["tcp_ip_header_bytes_up"] for a in headers) / len(headers) / rounds
        down = sum(a["tcp_ip_header_bytes_down"] for a in headers) / len(headers) / rounds
        print(f"  TCP/IP headers, reported separately (kernel segment counts): up {up:.1f} B, "
              f"down {down:.1f} B per agent per round")
    paper_bytes = s["paper_bits_per_update"] / 8
    print(f"  for comparison: the paper's d + K = {s['paper_bits_per_update']} bits = {paper_bytes:.0f} B "
          f"per update; FedAvg's float32 model = {s['fedavg_float32_bytes_per_agent_per_round']} B "
          f"each way per agent per round")
    print(f"{'agent':>5} {'up B':>9} {'down B':>9} {'peak RSS':>11} {'floor':>11} {'learning state':>15}")
    for a in s["per_agent"]:
        state = "-" if a["learning_state_bytes"] is None else f"{a['learning_state_bytes']} B"
        print(f"{a['id']:>5} {a['bytes_up']:>9} {a['bytes_down']:>9} {_mib(a['peak_rss_bytes']):>11} "
              f"{_mib(a['floor_rss_bytes']):>11} {state:>15}")
    silent = [str(a["id"]) for a in s["per_agent"] if a["peak_rss_bytes"] is None]
    if silent:
        print(f"  no report from agent {', '.join(silent)} (it left or lost its link before the end): "
              f"its env steps and memory are not known")
    print_links(s)
    print_boards(s)
    print(f"run folder: {out_dir}")


def _seconds(x):
    return "-" if x is None else f"{x:.2f} s"


def print_links(summary: dict) -> None:
    """Serial links: time on the wire, retransmissions and rejected frames per agent."""
    serial = [a for a in summary.get("per_agent", []) if a.get("baud")]
    if not serial:
        return
    print("serial links, the coordinator's side (time on the wire = all bytes x 10 bits / baud, 8N1):")
    print(f"{'agent':>5} {'baud':>7} {'wire up':>9} {'wire down':>10} {'other B up/down':>16} "
          f"{'retx':>5} {'dups':>5} {'rejected':>9} {'forged':>6} {'lost':>5}")
    for a in serial:
        other = f"{a.get('other_bytes_up', 0)}/{a.get('other_bytes_down', 0)}"
        print(f"{a['id']:>5} {a['baud']:>7} {_seconds(a.get('wire_seconds_up')):>9} "
              f"{_seconds(a.get('wire_seconds_down')):>10} {other:>16} {a.get('retransmissions', 0):>5} "
              f"{a.get('duplicates_received', 0):>5} {a.get('rejected_frames', 0):>9} "
              f"{a.get('forged_packets', 0):>6} {a.get('link_failures', 0):>5}")
    print("  retx: packets the coordinator sent again; dups: the agent's retransmissions that arrived; "
          "rejected: bad CRC, garbage and bad frames received; forged: ARQ packets with a wrong or missing tag; "
          "lost: link failures (rejoins)")


def print_boards(summary: dict) -> None:
    """Simulated boards: how each ended, its peak memory against its RAM, its line's faults."""
    boards = summary.get("boards")
    if not boards:
        return
    profile = summary.get("board_profile") or {}
    print(f"boards: {profile.get('name', '?')} ({boards[0]['link']}, {profile.get('ram_mb', '?')} MB RAM, "
          f"CPU {profile.get('cpu_factor', 1):g}x slower)"
          + (f"; faults {_fault_text(summary['faults'])}" if summary.get("faults") else ""))
    print(f"{'board':>5} {'status':>13} {'peak RSS':>11} {'RAM cap':>11} {'agent retx':>10} "
          f"{'agent rejected':>14} {'line faults drop/flip/burst/cut':>32}")
    for b in boards:
        agent = b.get("agent_link") or {}
        line = b.get("line")
        if line:
            faults = "/".join(str(line["up"][k] + line["down"][k]) for k in ("dropped", "flipped", "burst_bytes"))
            faults += f"/{line['cuts']}"
        else:
            faults = "-"
        retx = agent.get("retransmissions")
        rejected = sum(agent["rejected"].values()) if agent.get("rejected") is not None else "-"
        print(f"{b['id']:>5} {b['status']:>13} {_mib(b.get('peak_rss_bytes')):>11} "
              f"{_mib(b.get('ram_cap_bytes')):>11} {'-' if retx is None else retx:>10} {rejected:>14} "
              f"{faults:>32}")
        if b.get("message"):
            print(f"      {b['message']}")
    for error in summary.get("errors") or []:
        print(f"error: {error}")


def _fault_text(faults: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in faults.items() if v and k not in ("burst_len", "delay_ms",
                                                                              "disconnect_s"))
