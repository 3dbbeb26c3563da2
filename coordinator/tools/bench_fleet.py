"""`fedzo bench fleet [--agents 100,1000,5000] [--json]`: the coordinator's cost with n agents.

Issue 13 asks that a thousand agents fit on one coordinator. Each case runs a
real coordinator (Run + Server over loopback TCP, the run folder written
each round) in a process of its own, so its CPU time and memory are its
alone, and n agents (fleet_agents.py: real sessions and frames, no rollouts,
no replica) in FLEET_PROCESSES processes, each a selector loop over its
share of the connections, all started together.

Measured, per n (hopper, K = n blocks or the K of --blocks, ROUNDS rounds;
round 0 follows the joins and is left out):
- join: wall time from the moment every agent process starts connecting
  until the coordinator starts round 0 (every agent joined), and the
  coordinator's CPU time in that span (its X25519 and HMAC work, about
  2.6 ms an agent, is most of it);
- per round: the coordinator's CPU time (process time, its record-writing
  thread included; that of the serving loop's thread alone; and the part of it
  spent in Python's garbage collector, whose full collections scan every
  object and so cost more per agent as n grows), how often per round and
  agent it slept waiting for input (each wake-up is a pass of its loop:
  votes that arrive one by one cost more than votes that arrive together,
  and the agent processes here slow down as K = n grows, since each decodes
  n votes a round) and the wall time between
  round closes; and the CPU per
  agent per round, whose flatness from n to n says the cost grows no faster
  than n;
- the coordinator's resident memory after the joins and its peak;
- the reference the round's CPU is set against: the CPU of one loopback TCP
  send of a round result's frame, per connection, on up to FLOOR_CONNECTIONS
  connections read by another process (the kernel delivers to the receiver
  inside the sender's call, so no coordinator can spend less per agent);
- what a round's result costs at K = n, timed alone in this process: making
  and encoding it (once a round now, once per agent before) and sealing it
  under one agent's session keys (once per agent, unavoidable: each session
  has its own keys and sequence numbers).
The agent processes share the machine with the coordinator, so the wall
times include their work; the CPU times are the coordinator's own.
"""
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AGENT_COUNTS = (100, 1000, 5000)
ROUNDS = 6
FLEET_PROCESSES = 4
LIMIT_SECONDS = 1800.0
FLOOR_CONNECTIONS = 1000    # connections the send floor is measured on (the cost per send is flat in n)


def _quiet(*args, **kwargs):
    pass


def _fleet_process(address, key, count, rounds, go, out):
    """An agent process: build its fleet, say it is ready, connect all at `go`, serve till the end."""
    from fedzo.coordinator.tools.fleet_agents import Fleet
    from fedzo.coordinator.transports.fdlimit import ensure_open_files

    ensure_open_files(count, 0)
    fleet = Fleet(address, key, count, rounds)
    out.put(("ready", os.getpid()))
    go.wait()
    try:
        fleet.run(LIMIT_SECONDS)
        out.put(("done", {"retries": fleet.retries, "rejected": fleet.rejected, "cpu_s": time.process_time()}))
    except Exception as exc:           # said by the coordinator's process
        out.put(("failed", f"{type(exc).__name__}: {exc}"))


class CollectorTime:
    """CPU seconds this process spends in Python's garbage collector (gc.callbacks)."""

    def __init__(self):
        self.seconds, self._start = 0.0, None
        gc.callbacks.append(self._callback)

    def _callback(self, phase, info):
        if phase == "start":
            self._start = time.process_time()
        elif self._start is not None:
            self.seconds += time.process_time() - self._start

    def stop(self):
        gc.callbacks.remove(self._callback)


def _sealing_costs(agents: int, repeat: int = 200) -> dict:
    """Microseconds to make and encode a RoundResultNext of `agents` votes, and to seal one
    already encoded under an established session (what each agent's link costs a round)."""
    from fedzo.edge.protocol import AGENT, COORDINATOR, Challenge, Hello, Join, RoundResultNext, Session, Welcome

    key = os.urandom(32)
    agent, coord = Session(AGENT, key), Session(COORDINATOR, key)
    coord.open(agent.seal(Hello()))
    agent.open(coord.seal(Challenge()))
    coord.open(agent.seal(Join(0)))
    agent.open(coord.seal(Welcome(0, 0, 1, 10, 7, 0, bytes(8), "{}")))
    votes = tuple((k % 3) - 1 for k in range(agents))
    start = time.perf_counter()
    for _ in range(repeat):
        RoundResultNext(1, votes, bytes(8)).encode_body()
    encode = (time.perf_counter() - start) / repeat
    shared = RoundResultNext(1, votes, bytes(8))
    shared.encode_body()
    start = time.perf_counter()
    for _ in range(repeat):
        coord.seal(shared)
    seal = (time.perf_counter() - start) / repeat
    frame = 4 + len(coord.seal(shared))          # the TCP length prefix and the sealed frame
    return {"result_encode_us": 1e6 * encode, "result_seal_us": 1e6 * seal, "result_frame_bytes": frame}


def _send_floor(agents: int, frame_bytes: int, repeat: int = 5) -> dict:
    """The reference a round's CPU is set against, measured in this process: microseconds of
    CPU per `send` of a frame_bytes frame on loopback TCP, one to each of up to `agents`
    connections (capped at FLOOR_CONNECTIONS), whose peers are read in another process,
    as the agents' are. A round's coordinator CPU per agent cannot fall below it: the kernel
    delivers to the receiving socket, and wakes its reader, inside the sender's call."""
    import multiprocessing
    import socket

    count = min(agents, FLOOR_CONNECTIONS)
    listener = socket.create_server(("127.0.0.1", 0), backlog=count)
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    reader = context.Process(target=_floor_reader, args=(listener.getsockname(), count, ready), daemon=True)
    reader.start()
    conns = []
    try:
        for _ in range(count):
            conns.append(listener.accept()[0])
        ready.wait(60)
        frame = bytes(frame_bytes)
        costs = []
        for _ in range(repeat):
            start = time.process_time()
            for conn in conns:
                conn.send(frame)
            costs.append((time.process_time() - start) / count)
            time.sleep(0.05)            # the reader drains what was sent
        return {"send_floor_us": 1e6 * statistics.median(costs), "send_floor_connections": count}
    finally:
        for conn in conns:
            conn.close()
        listener.close()
        reader.join(10)
        if reader.is_alive():
            reader.kill()


def _floor_reader(address, count, ready):
    """The agents' side of the send floor: `count` connections read by one selector loop."""
    import selectors
    import socket

    from fedzo.coordinator.transports.fdlimit import ensure_open_files

    ensure_open_files(count, 0)
    selector = selectors.DefaultSelector()
    for _ in range(count):
        sock = socket.create_connection(address)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    ready.set()
    open_count = count
    while open_count:
        for key, _ in selector.select(timeout=30):
            try:
                data = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                selector.unregister(key.fileobj)
                key.fileobj.close()
                open_count -= 1


def measure(agents: int, rounds: int = ROUNDS, processes: int = FLEET_PROCESSES, workdir=None,
            blocks: int = 0) -> dict:
    """One case, in this process as the coordinator; its figures (see the module docstring).
    blocks: K (0: K = n, one block per agent)."""
    import multiprocessing

    from fedzo.coordinator.run.lifecycle import Run
    from fedzo.coordinator.transports.server import Server
    from fedzo.edge.agent.memory import current_rss_bytes, peak_rss_bytes
    from fedzo.edge.learning.config import RunConfig

    key = os.urandom(32)
    workdir = Path(workdir or tempfile.mkdtemp(prefix="fedzo-bench-fleet-"))
    config = RunConfig(task="hopper", agents=agents, rounds=rounds, batch=1, comparisons=1, eval_every=0,
                       eval_episodes=1, seed=3, blocks=blocks)
    run = Run(config, workdir / f"fleet-{agents}", round_timeout=LIMIT_SECONDS, log=_quiet, plots=False)
    server = Server(run, key, listen=("127.0.0.1", 0), log=_quiet)
    closes = []
    collector = CollectorTime()
    after_round = run.runtime.on_round_closed

    def on_closed(info):
        closes.append((time.monotonic(), time.process_time(), time.thread_time(),    # the loop's thread
                       collector.seconds, resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw))
        after_round(info)

    run.runtime.on_round_closed = on_closed
    context = multiprocessing.get_context("spawn")     # this process has threads: no fork
    go, out = context.Event(), context.Queue()
    shares = [agents // processes + (i < agents % processes) for i in range(processes)]
    children = [context.Process(target=_fleet_process, args=(server.address, key, n, rounds, go, out), daemon=True)
                for n in shares if n]
    for child in children:
        child.start()
    for _ in children:
        kind, value = out.get(timeout=LIMIT_SECONDS)
        if kind != "ready":
            raise RuntimeError(f"an agent process failed: {value}")
    joined = {}
    start_wall, start_cpu = time.monotonic(), time.process_time()

    def check():
        if not joined and run.runtime.started:
            joined.update(wall=time.monotonic() - start_wall, cpu=time.process_time() - start_cpu,
                          rss=current_rss_bytes())

    go.set()
    try:
        server.serve(stop_after=LIMIT_SECONDS, check=check)
        run.finish()
    finally:
        for child in children:
            child.join(30)
            if child.is_alive():
                child.kill()
    fleets = []
    while not out.empty():
        kind, value = out.get()
        if kind == "failed":
            raise RuntimeError(f"an agent process failed: {value}")
        fleets.append(value)
    sealing = _sealing_costs(config.block_count)     # a result carries K votes
    collector.stop()
    steady = closes[1:]
    # Per steady round, each figure's change between one close and the next.
    walls, cpus, loop_cpus, gc_cpus, waits = zip(*([b - a for a, b in zip(one, two)]
                                                  for one, two in zip(steady, steady[1:])))
    cpu_round = statistics.median(cpus)
    return {"agents": agents, "blocks": config.block_count, "rounds_measured": len(walls), "processes": len(children),
            "join_s": joined.get("wall"), "join_cpu_s": joined.get("cpu"),
            "round_cpu_ms": 1000 * cpu_round, "round_cpu_ms_max": 1000 * max(cpus),
            "round_loop_cpu_ms": 1000 * statistics.median(loop_cpus),
            "round_gc_ms": 1000 * statistics.median(gc_cpus),
            "round_waits_per_agent": statistics.median(waits) / agents,
            "round_wall_ms": 1000 * statistics.median(walls),
            "cpu_us_per_agent_round": 1e6 * cpu_round / agents,
            "rss_after_join_mb": (joined.get("rss") or 0) / 2**20, "rss_peak_mb": peak_rss_bytes() / 2**20,
            "agent_retries": sum(f["retries"] for f in fleets), "rounds_done": run.runtime.round,
            **sealing, **_send_floor(agents, sealing["result_frame_bytes"]),
            "cpu_count": os.cpu_count(), "load_1min": os.getloadavg()[0]}


def run(agent_counts=AGENT_COUNTS, log=_quiet, blocks: int = 0) -> list:
    """Every case, each coordinator in a fresh process (its CPU and memory alone); the records.
    blocks: K for every case (0: K = n)."""
    records = []
    for n in agent_counts:
        log(f"bench fleet: n = {n}" + (f", K = {blocks}" if blocks else ""))
        done = subprocess.run([sys.executable, "-m", "fedzo.coordinator.tools.bench_fleet", str(n), str(blocks)],
                              capture_output=True, text=True, timeout=LIMIT_SECONDS * 2)
        if done.returncode != 0:
            raise RuntimeError(f"bench fleet n = {n} failed:\n{done.stderr[-2000:]}")
        records.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return records


def format_table(records: list) -> str:
    """The records as a text table, with the per-agent cost relative to the smallest n."""
    first = records[0]["cpu_us_per_agent_round"]
    blocks = "K = n" if records[0].get("blocks", records[0]["agents"]) == records[0]["agents"] \
        else f"K = {records[0]['blocks']}"
    lines = [f"fedzo bench fleet: a coordinator and n agents over loopback TCP (hopper, {blocks}, agents skip "
             f"rollouts; {records[0]['processes']} agent processes; this machine: {os.cpu_count()} cores, "
             f"load {records[-1]['load_1min']:.1f})",
             f"{'n':>6} {'join s':>7} {'join cpu s':>10} {'round cpu ms':>12} {'(max)':>7} {'loop ms':>7} {'gc ms':>6} "
             f"{'round wall ms':>13} "
             f"{'cpu us/agent':>12} {'x n=' + str(records[0]['agents']):>8} {'waits':>5} {'send us':>7} {'x send':>6} "
             f"{'RSS MB':>7} {'peak MB':>8} {'retries':>7}"]
    for r in records:
        lines.append(f"{r['agents']:>6} {r['join_s']:>7.2f} {r['join_cpu_s']:>10.2f} {r['round_cpu_ms']:>12.1f} "
                     f"{r['round_cpu_ms_max']:>7.1f} {r['round_loop_cpu_ms']:>7.1f} {r['round_gc_ms']:>6.1f} "
                     f"{r['round_wall_ms']:>13.1f} "
                     f"{r['cpu_us_per_agent_round']:>12.1f} {r['cpu_us_per_agent_round'] / first:>8.2f} "
                     f"{r['round_waits_per_agent']:>5.2f} {r['send_floor_us']:>7.1f} {r['cpu_us_per_agent_round'] / r['send_floor_us']:>6.2f} "
                     f"{r['rss_after_join_mb']:>7.0f} {r['rss_peak_mb']:>8.0f} {r['agent_retries']:>7}")
    lines.append("join: from the agents' first connect to round 0's start (wall; the coordinator's CPU in it). "
                 "round: median over rounds 1.. of the coordinator process's CPU time (record thread "
                 "included; loop: the serving thread alone; gc: in Python's garbage collector) and of the "
                 "wall time between round closes, which includes the agent processes' work on the same cores. cpu us/agent: round CPU / n; a flat column is cost linear in n. "
                 "waits: the times per round and agent the coordinator slept for input (voluntary context "
                 "switches): each costs it a loop pass, so votes that arrive one by one cost more than votes "
                 "that arrive together. send us: the reference, measured in the same process after the run: CPU per loopback "
                 "TCP send of one round result's frame to a connection read by another process (the "
                 "kernel's share of a round, which no coordinator can avoid); x send: cpu us/agent "
                 "over it.")
    lines.append(f"a round's result at {blocks}: " + "; ".join(
        f"n = {r['agents']}: made and encoded once {r['result_encode_us']:.0f} us, sealed per agent "
        f"{r['result_seal_us']:.1f} us" for r in records if "result_seal_us" in r))
    return "\n".join(lines)


if __name__ == "__main__":
    # Through the package's name, so the agent processes (spawned) find _fleet_process there.
    from fedzo.coordinator.tools.bench_fleet import measure as measure_here
    print(json.dumps(measure_here(int(sys.argv[1]), blocks=int(sys.argv[2]) if len(sys.argv) > 2 else 0)))
