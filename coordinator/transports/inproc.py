"""The in-process link: coordinator and K agents in one process, no network.

Each agent talks to the coordinator through a pair of protocol Endpoints
joined by in-memory byte queues, so every frame is sealed, authenticated,
framed, counted and opened exactly as on TCP: the byte counts of an
in-process run are those of the same run on TCP (minus TCP/IP headers).

Agents handle their messages in a thread pool (MuJoCo releases the GIL while
it steps, so rollouts of different agents overlap); each agent's state is
touched by one thread at a time, and the coordinator runs on the main thread.
"""
import os
import time
from concurrent.futures import ThreadPoolExecutor

from fedzo.coordinator.rounds.boundary import deliver
from fedzo.coordinator.rounds.runtime import CLOSE
from fedzo.edge.agent.boundary import MessageRefused, take
from fedzo.edge.agent.runtime import AgentRefused, AgentRuntime
from fedzo.edge.protocol import (
    AGENT,
    COORDINATOR,
    Endpoint,
    LinkCounters,
    RejoinSecrets,
    Session,
    SessionClosed,
)


class InprocLink:
    """Both ends of one agent's link, in memory."""

    def __init__(self, index: int, run_key: bytes, secrets: RejoinSecrets):
        self.index = index
        self.name = f"inproc-{index}"
        self.counters = LinkCounters(self.name)                 # the coordinator's side
        self.agent_counters = LinkCounters(f"{self.name}-agent")
        self.coordinator_end = Endpoint(Session(COORDINATOR, run_key, counters=self.counters,
                                                rejoin_secrets=secrets))
        self.agent_end = Endpoint(Session(AGENT, run_key, counters=self.agent_counters))
        self.to_agent = []       # byte strings waiting for the agent
        self.closed = False


def _agent_step(agent: AgentRuntime, link: InprocLink, data: bytes) -> list:
    """Feed bytes to an agent; the bytes of its replies.

    The messages of one batch are opened before the agent handles them, so a Bye that
    ended the session may follow a message the agent still answers (its Report after a
    last RoundResult that came late, with the Bye of a coordinator that stopped waiting).
    Such a reply cannot be sent, as on TCP, where the link is gone by then: it is dropped.
    """
    replies, closed = [], False
    for msg in link.agent_end.feed(data):
        for reply in take(agent, msg, link.agent_counters):   # MessageRefused: the caller drops the link
            if closed:
                continue
            try:
                replies.append(link.agent_end.send(reply))
            except SessionClosed:
                closed = True          # the agent still handles the rest (the Bye that ends it)
    return replies


def run_inproc(run, agents, run_key: bytes, workers=None, log=print) -> dict:
    """Drive `run` (a fedzo.coordinator.run.lifecycle.Run) with in-process agents until it is done."""
    secrets = RejoinSecrets()
    links = [InprocLink(i, run_key, secrets) for i in range(len(agents))]
    to_coordinator = [(link, link.agent_end.send(agent.hello())) for agent, link in zip(agents, links)]
    runtime = run.runtime

    def dispatch(outputs):
        for link, msg in outputs:
            if link.closed:
                continue
            if msg is CLOSE:
                link.closed = True
            else:
                link.to_agent.append(link.coordinator_end.send(msg))
        runtime.after_dispatch()

    def drop(link, reason):
        log(f"agent {link.index}: {reason}")
        link.closed = True
        dispatch(runtime.disconnected(link))

    workers = workers or min(len(agents), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while not runtime.done:
            for link, data in to_coordinator:
                for msg in link.coordinator_end.feed(data):
                    if link.closed:
                        break              # refused at the boundary: the rest is not read
                    dispatch(deliver(runtime, link, msg, log))
            to_coordinator = []
            dispatch(runtime.tick())
            ready = [(a, l) for a, l in zip(agents, links) if l.to_agent and not l.closed]
            if not ready:
                if not runtime.done:
                    time.sleep(0.01)         # only deadlines can move the run now
                continue
            jobs = []
            for agent, link in ready:
                data, link.to_agent = b"".join(link.to_agent), []
                jobs.append((link, pool.submit(_agent_step, agent, link, data)))
            for link, job in jobs:
                try:
                    to_coordinator += [(link, data) for data in job.result()]
                except AgentRefused as exc:
                    drop(link, f"refused to take part: {exc}")
                except MessageRefused as exc:
                    drop(link, f"refused a message: {exc}")
                except Exception as exc:   # an agent's failure must not stop the run
                    drop(link, f"failed: {exc!r}")
        # Deliver the final Byes so every agent ends cleanly (an agent's failure here, too,
        # must not cost the finished run its summary).
        for agent, link in zip(agents, links):
            if link.to_agent:
                try:
                    _agent_step(agent, link, b"".join(link.to_agent))
                except Exception as exc:
                    log(f"agent {link.index}: failed at the end of the run: {exc!r}")
    return run.finish()
