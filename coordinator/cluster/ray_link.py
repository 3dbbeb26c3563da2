"""`fedzo simulate --link ray`: the coordinator here, its agents in Ray actors.

The coordinator's state machine runs in the driver, as with the in-process link, and
each agent's link has the same two ends: the coordinator's Endpoint here (its counters
are the run's byte counts) and the agent's Endpoint in an actor (agent_host.py). Only
sealed frames travel between them, and the driver runs the in-process link's own loop
(inproc.drive: deliver what came up, tick, hand every waiting agent its bytes, take the
replies in agent order), so a run's bytes and results are those of the in-process run
with the same seed. Each step makes one Ray call per actor, with all its agents' bytes.

Agents are spread round-robin over the actors, one CPU each; by default as many actors
as the cluster has CPUs free when the run starts (the coordinator runs in the driver).
"""
from fedzo.coordinator.cluster.agent_host import FAILED, MESSAGE_REFUSED, OK, REFUSED, AgentHost
from fedzo.coordinator.cluster.connect import ray_session
from fedzo.coordinator.transports.inproc import drive
from fedzo.edge.protocol import COORDINATOR, Endpoint, LinkCounters, RejoinSecrets, Session

ACTOR_START_TIMEOUT = 300.0       # seconds the actors may take to be placed and start
WHY = {REFUSED: "refused to take part", MESSAGE_REFUSED: "refused a message", FAILED: "failed"}


class ActorsUnavailable(RuntimeError):
    """The agents' actors could not start (no free CPU in the cluster, or they died at once)."""


class RayLink:
    """The coordinator's end of one agent's link; the agent's end lives in an actor."""

    transport = "ray"

    def __init__(self, index: int, run_key: bytes, secrets: RejoinSecrets):
        self.index = index
        self.name = f"ray-{index}"
        self.counters = LinkCounters(self.name)
        self.coordinator_end = Endpoint(Session(COORDINATOR, run_key, counters=self.counters,
                                                rejoin_secrets=secrets))
        self.to_agent = []       # byte strings waiting for the agent
        self.closed = False


def simulate_ray(run, run_key: bytes, address=None, actors=None, log=print) -> dict:
    """Connect to Ray (a local one started here without `address`) and run; the run's summary."""
    with ray_session(address, log=log) as ray:
        return run_ray(ray, run, run_key, actors=actors, log=log)


def spare_cpus(ray) -> int:
    """CPUs free in the cluster now (at least 1)."""
    return max(1, int(ray.available_resources().get("CPU", 0)))


def run_ray(ray, run, run_key: bytes, actors=None, log=print) -> dict:
    """Drive `run` (a lifecycle.Run) with config.agents agents in `actors` Ray actors until it is done."""
    n = run.config.agents
    count = max(1, min(n, actors or spare_cpus(ray)))
    secrets = RejoinSecrets()
    links = [RayLink(i, run_key, secrets) for i in range(n)]
    host_of = [i % count for i in range(n)]
    Host = ray.remote(num_cpus=1)(AgentHost)
    hosts = [Host.remote([i for i in range(n) if host_of[i] == a], run_key, run.config.task) for a in range(count)]
    try:
        log(f"ray: {n} agents in {count} actors")
        try:
            hellos = dict(pair for batch in ray.get([h.hellos.remote() for h in hosts], timeout=ACTOR_START_TIMEOUT)
                          for pair in batch)
        except (ray.exceptions.GetTimeoutError, ray.exceptions.RayError) as exc:
            raise ActorsUnavailable(f"the agents' {count} actors did not start ({type(exc).__name__}); "
                                    f"the cluster needs {count} free CPUs (or pass fewer --actors)") from exc
        drive(run.runtime, links, [(link, hellos[link.index]) for link in links],
              lambda batch: _step(ray, hosts, host_of, batch), log)
    finally:
        for host in hosts:
            ray.kill(host)
    return run.finish()


def _step(ray, hosts, host_of, batch) -> list:
    """Each (link, bytes) of `batch` to its agent, one call per actor; [(replies, None) or (None, why)]."""
    per_actor = {}
    for link, data in batch:
        per_actor.setdefault(host_of[link.index], []).append((link.index, data))
    calls = {a: hosts[a].step.remote(items) for a, items in per_actor.items()}
    outcomes = {}
    for a, ref in calls.items():
        try:
            outcomes.update({index: (outcome, payload) for index, outcome, payload in ray.get(ref)})
        except ray.exceptions.RayError as exc:      # the actor (or its node) is gone: its agents drop
            first = (str(exc).strip().splitlines() or [""])[0]
            outcomes.update({index: (FAILED, f"its actor was lost: {type(exc).__name__}: {first}")
                             for index, _ in per_actor[a]})
    out = []
    for link, _ in batch:
        outcome, payload = outcomes[link.index]
        out.append((payload, None) if outcome == OK else (None, f"{WHY.get(outcome, outcome)}: {payload}"))
    return out
