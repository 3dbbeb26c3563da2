"""`fedzo bench link [--json]`: what a round costs on the link, vs K, per transport and algorithm.

The link is measured, not learning: the agents are real protocol agents
(AgentRuntime over the real TCP and serial transports, sessions, HMAC,
fragments, ARQ, pacing) but skip their rollouts, voting from the seed
instead, so a round takes what its messages take on the wire and in the
protocol stack. Every case runs `ROUNDS` rounds; round 0 (which includes the
join) is left out of the figures.

Measured, per case:
- round latency: median time between two successive round closes at the
  coordinator, i.e. RoundResult + RoundStart down, the agents' answers up;
- frame bytes per agent per round, up and down (messages with their
  framing, as LinkCounters counts them), and wire bytes (frames plus
  acknowledgements and any retransmission);
- on TCP, from the kernel's own counts at the coordinator's end of each
  connection (edge/links/tcpinfo.py), read at every round close: segments
  per agent per round each way, how many of them were bare acknowledgements
  (segments without data), and the TCP/IP header bytes they cost. Fast
  agents answer within the delayed-ACK time, so their ACKs can ride on data;
  a "think" case (agents that wait 1 to 2 x THINK_SECONDS before voting,
  longer than Linux's largest delayed-ACK time of 200 ms, as a real rollout
  does, and not all at once) shows the acknowledgements TCP cannot avoid.
  The counts are read when a round closes, while the next round's first
  segments may already be in flight, so a figure can be off by a segment
  over the whole window (about +-0.04 per round over TCP_ROUNDS).

Derived (and marked so): FedAvg-S2ZPO over serial moves 2 x 4d bytes per
agent per round (20 KB each way for hopper), which takes seconds at 115200
baud and minutes at 9600. Those cases run at 921600 baud to measure their
bytes, and their round time at the slower rates is the wire time of those
bytes: (frame bytes up + frame bytes down) x 10 / baud, since the upload
and the download do not overlap, each agent has its own line, and the
acknowledgements of one direction travel on the other at the same time. One
FedAvg case (K = 1 at 115200) is measured as well, to show how close that
estimate is.
"""
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.learning.config import RunConfig
from fedzo.edge.links.serial_link import wire_seconds

KEY = os.urandom(32)
ROUNDS = 4
TCP_ROUNDS = 30                     # TCP rounds are quick; more of them steady the per-round segment counts
THINK_ROUNDS = 8
AGENT_COUNTS = (1, 5, 15)
SLOW_BAUDS = (115200, 9600)
FAST_BAUD = 921600                  # a standard UART rate, to measure FedAvg's bytes quickly
ALGOS = ("par-s2zpo", "fedavg-s2zpo")
THINK_SECONDS = 0.3                 # the "think" case: longer than any delayed ACK (200 ms)
THINK_AGENTS = 5


class LinkOnlyRuntime(AgentRuntime):
    """An agent that skips its rollouts; messages, replicas and hashes are real."""

    think = 0.0                      # seconds each comparison takes (a stand-in for rollouts)

    def _build(self, *args):
        super()._build(*args)
        index, think = self.logic.index, self.think

        def outcome(stream, round_, start, stop, scratch):
            # No rollouts: a vote that varies with the round, so theta moves. Thinking
            # agents take 1, 1.5 or 2 x think, so their votes reach the coordinator apart.
            if think:
                time.sleep(think * (1 + index % 3 / 2))
            return 1 if (round_ + index) % 3 else -1

        self.logic._compare = outcome


def _quiet(*args, **kwargs):
    pass


def _segments(links) -> dict:
    """The kernel's segment counts summed over the coordinator's end of `links`."""
    from fedzo.edge.links.tcpinfo import tcp_header_figures

    total = {}
    for link in links:
        for key, value in tcp_header_figures(link.sock).items():
            total[key] = total.get(key, 0) + value
    return total


def _tcp_figures(snapshots, agents: int) -> dict:
    """Per agent per round, between the first and the last measured round close:
    segments each way, the bare acknowledgements among them, and their TCP/IP header bytes
    (up = the agents' segments, down = the coordinator's)."""
    first, last = snapshots[0], snapshots[-1]
    if "data_segments_out" not in last:
        return {}
    scale = agents * (len(snapshots) - 1)

    def per(key):
        return (last[key] - first[key]) / scale

    return {"tcp_segments_up_per_agent_per_round": per("segments_in"),
            "tcp_segments_down_per_agent_per_round": per("segments_out"),
            "tcp_bare_acks_up_per_agent_per_round": per("segments_in") - per("data_segments_in"),
            "tcp_bare_acks_down_per_agent_per_round": per("segments_out") - per("data_segments_out"),
            "tcp_ip_header_bytes_up_per_agent_per_round": per("header_bytes_in"),
            "tcp_ip_header_bytes_down_per_agent_per_round": per("header_bytes_out")}


def measure(link: str, algo: str, agents: int, baud=None, rounds: int = ROUNDS, workdir=None,
            think: float = 0.0) -> dict:
    """Run one case; its measured figures (see the module docstring).

    think: seconds each agent waits before it votes (TCP: shows the unavoidable ACKs)."""
    from fedzo.coordinator.run.lifecycle import Run
    from fedzo.coordinator.transports.server import Server
    from fedzo.edge.agent.serial import run_agent_serial
    from fedzo.edge.agent.tcp import run_agent_tcp
    from fedzo.firmware_sim.line import SerialLine

    workdir = Path(workdir or tempfile.mkdtemp(prefix="fedzo-bench-link-"))
    config = RunConfig(task="hopper", algo=algo, agents=agents, rounds=rounds, batch=1, comparisons=1,
                       eval_every=0, eval_episodes=1, seed=3)
    name = f"{link}-{baud or 'tcp'}-{algo}-{agents}" + (f"-think{think}" if think else "")
    run = Run(config, workdir / name, round_timeout=600.0, log=_quiet)
    closes, snapshots = [], []
    after_round = run.runtime.on_round_closed

    def on_closed(info):
        closes.append(time.monotonic())      # first: the evaluation after the last round is not the link's
        if link == "tcp" and info["round"] >= 1:
            snapshots.append(_segments(s.link for s in run.runtime.slots if s.link is not None))
        after_round(info)

    run.runtime.on_round_closed = on_closed
    runtimes = [LinkOnlyRuntime(agent_id=k, log=_quiet) for k in range(agents)]
    for rt in runtimes:
        rt.think = think
    lines = []
    try:
        if link == "tcp":
            server = Server(run, KEY, listen=("127.0.0.1", 0), log=_quiet)
            targets = [lambda rt: run_agent_tcp(server.address, KEY, rt, log=_quiet)] * agents
        else:
            lines = [SerialLine(baud, index=k).start() for k in range(agents)]
            server = Server(run, KEY, listen=None, serial=[l.coordinator_port for l in lines], baud=baud,
                            log=_quiet)
            targets = [lambda rt, port=l.agent_port: run_agent_serial(port, KEY, rt, baud=baud, log=_quiet)
                       for l in lines]
        threads = [threading.Thread(target=t, args=(rt,), daemon=True) for t, rt in zip(targets, runtimes)]
        for t in threads:
            t.start()
        server.serve(stop_after=900)
        run.finish()
        for t in threads:
            t.join(30)
    finally:
        for line in lines:
            line.close()
    counters = [c for _, c in run.link_counters()]
    measured = range(1, rounds)

    def per_agent_round(direction, key):
        return statistics.fmean(c.round_stats(r)[direction][key] for c in counters for r in measured)

    record = {
        "link": link, "baud": baud, "algo": algo, "agents": agents, "rounds_measured": len(measured),
        "think_s": think,
        "round_latency_s": statistics.median(b - a for a, b in zip(closes, closes[1:])),
        "frame_bytes_up_per_agent_per_round": per_agent_round("up", "frame_bytes"),
        "frame_bytes_down_per_agent_per_round": per_agent_round("down", "frame_bytes"),
        "wire_bytes_up_per_agent_per_round": per_agent_round("up", "wire_bytes"),
        "wire_bytes_down_per_agent_per_round": per_agent_round("down", "wire_bytes"),
        "d": run.store.d,
    }
    if link == "tcp" and len(snapshots) >= 2:
        record.update(_tcp_figures(snapshots, agents))
    return record


def _finish(record: dict, *, latency_measured: bool, bytes_from: str) -> dict:
    baud = record["baud"]
    # Up and down do not overlap in a round, but each direction's acks ride the
    # other direction at the same time (a UART is full duplex): frames only.
    frames = record["frame_bytes_up_per_agent_per_round"] + record["frame_bytes_down_per_agent_per_round"]
    record["wire_seconds_per_round"] = wire_seconds(frames, baud) if baud else None
    record["latency_measured"] = latency_measured
    record["bytes_measured_on"] = bytes_from
    record["cpu_count"] = os.cpu_count()
    return record


def run(agent_counts=AGENT_COUNTS, slow_bauds=SLOW_BAUDS, log=_quiet, tcp_only=False, tcp_think=True) -> list:
    """Every case; a list of records (one per link, baud, algorithm and K).

    tcp_only: only the TCP cases (what `fedzo bench link --tcp` prints: the packet figures)."""
    workdir = tempfile.mkdtemp(prefix="fedzo-bench-link-")
    records = []
    for algo in ALGOS:
        for k in agent_counts:
            log(f"bench link: {algo} K={k} tcp")
            records.append(_finish(measure("tcp", algo, k, rounds=TCP_ROUNDS, workdir=workdir),
                                   latency_measured=True, bytes_from="tcp"))
        if algo == "par-s2zpo" and tcp_think:
            log(f"bench link: {algo} K={THINK_AGENTS} tcp, agents think {THINK_SECONDS} s")
            records.append(_finish(measure("tcp", algo, THINK_AGENTS, rounds=THINK_ROUNDS, workdir=workdir,
                                                   think=THINK_SECONDS),
                                   latency_measured=True, bytes_from="tcp"))
        if tcp_only:
            continue
        if algo == "par-s2zpo":
            for baud in slow_bauds:
                for k in agent_counts:
                    log(f"bench link: {algo} K={k} serial {baud}")
                    records.append(_finish(measure("serial", algo, k, baud, workdir=workdir),
                                           latency_measured=True, bytes_from=f"serial {baud}"))
            continue
        # FedAvg over serial: bytes measured at FAST_BAUD, time derived at the slow rates,
        # plus one case measured at the first slow rate.
        fast = {}
        for k in agent_counts:
            log(f"bench link: {algo} K={k} serial {FAST_BAUD} (bytes)")
            fast[k] = measure("serial", algo, k, FAST_BAUD, rounds=3, workdir=workdir)
            records.append(_finish(dict(fast[k]), latency_measured=True, bytes_from=f"serial {FAST_BAUD}"))
        k0, baud0 = min(agent_counts), slow_bauds[0]
        log(f"bench link: {algo} K={k0} serial {baud0} (measured)")
        records.append(_finish(measure("serial", algo, k0, baud0, rounds=3, workdir=workdir),
                               latency_measured=True, bytes_from=f"serial {baud0}"))
        for baud in slow_bauds:
            for k in agent_counts:
                if (k, baud) == (k0, baud0):
                    continue
                derived = dict(fast[k], baud=baud)
                derived = _finish(derived, latency_measured=False, bytes_from=f"serial {FAST_BAUD}")
                derived["round_latency_s"] = derived["wire_seconds_per_round"]
                records.append(derived)
    order = {"tcp": 0}
    records.sort(key=lambda r: (order.get(r["link"], 1), -(r["baud"] or 0), r["think_s"], r["agents"],
                                r["algo"] != "par-s2zpo"))
    return records


def format_table(records: list) -> str:
    """The records as a text table, with a line comparing the algorithms at 115200 baud."""
    lines = [f"fedzo bench link: agents skip rollouts, so a round is its messages on the link "
             f"(hopper, d = {records[0]['d']}; this machine: {os.cpu_count()} cores)",
             f"{'link':<14} {'algo':<13} {'K':>3} {'round s':>9} {'up B/agent':>11} {'down B/agent':>13} "
             f"{'wire s/round':>12}  source"]
    for r in records:
        link = "tcp" if r["link"] == "tcp" else f"serial {r['baud']}"
        latency = f"{r['round_latency_s']:.3f}" + ("" if r["latency_measured"] else "*")
        wire = "-" if r["wire_seconds_per_round"] is None else f"{r['wire_seconds_per_round']:.3f}"
        source = ("measured" if r["latency_measured"] and r["bytes_measured_on"] == link
                  else f"bytes measured on {r['bytes_measured_on']}; time derived")
        lines.append(f"{link:<14} {r['algo']:<13} {r['agents']:>3} {latency:>9} "
                     f"{r['frame_bytes_up_per_agent_per_round']:>11.0f} "
                     f"{r['frame_bytes_down_per_agent_per_round']:>13.0f} {wire:>12}  {source}")
    tcp = [r for r in records if "tcp_segments_up_per_agent_per_round" in r]
    if tcp:
        lines.append("")
        lines.append("TCP per agent per round, from the kernel's segment counts at the coordinator "
                     "(segments: all, of them bare ACKs; headers: TCP/IP header bytes):")
        lines.append(f"{'algo':<13} {'K':>3} {'think s':>7} {'segs up':>8} {'acks up':>8} {'segs down':>9} "
                     f"{'acks down':>9} {'hdr B up':>9} {'hdr B down':>10} {'frame B up':>10} {'frame B down':>12}")
        for r in tcp:
            lines.append(f"{r['algo']:<13} {r['agents']:>3} {r['think_s']:>7.1f} "
                         f"{r['tcp_segments_up_per_agent_per_round']:>8.2f} "
                         f"{r['tcp_bare_acks_up_per_agent_per_round']:>8.2f} "
                         f"{r['tcp_segments_down_per_agent_per_round']:>9.2f} "
                         f"{r['tcp_bare_acks_down_per_agent_per_round']:>9.2f} "
                         f"{r['tcp_ip_header_bytes_up_per_agent_per_round']:>9.0f} "
                         f"{r['tcp_ip_header_bytes_down_per_agent_per_round']:>10.0f} "
                         f"{r['frame_bytes_up_per_agent_per_round']:>10.0f} "
                         f"{r['frame_bytes_down_per_agent_per_round']:>12.0f}")
        lines.append("")
    lines.append("round s: median time between round closes; * = derived: (up + down) B/agent x 10 / baud, "
                 "i.e. wire s/round.")
    lines.append("up/down B/agent: frame bytes per agent per round (serial: fragments, CRC, COBS; TCP: length "
                 "prefix; header and tag included).")
    for baud in (115200,):
        par = [r for r in records if r["baud"] == baud and r["algo"] == "par-s2zpo"]
        fed = [r for r in records if r["baud"] == baud and r["algo"] == "fedavg-s2zpo"]
        for p in par:
            f = next((x for x in fed if x["agents"] == p["agents"]), None)
            if f is None:
                continue
            p_bytes = p["frame_bytes_up_per_agent_per_round"] + p["frame_bytes_down_per_agent_per_round"]
            f_bytes = f["frame_bytes_up_per_agent_per_round"] + f["frame_bytes_down_per_agent_per_round"]
            lines.append(f"at {baud} baud, K = {p['agents']}: a FedAvg-S2ZPO round moves {f_bytes:.0f} B per "
                         f"agent ({f['wire_seconds_per_round']:.2f} s on the wire), a Par-S2ZPO round "
                         f"{p_bytes:.0f} B ({p['wire_seconds_per_round']:.3f} s): {f_bytes / p_bytes:.0f}x")
    return "\n".join(lines)
