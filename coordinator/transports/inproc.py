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


def agent_replies(agent: AgentRuntime, endpoint, counters, data: bytes) -> list:
    """Feed bytes to an agent through its end of a link; the sealed bytes of its replies
    (the in-process link's agents and the Ray actors' both step this way).

    The messages of one batch are opened before the agent handles them, so a Bye that
    ended the session may follow a message the agent still answers (its Report after a
    last RoundResult that came late, with the Bye of a coordinator that stopped waiting).
    Such a reply cannot be sent, as on TCP, where the link is gone by then: it is dropped.
    """
    replies, closed = [], False
    for msg in endpoint.feed(data):
        for reply in take(agent, msg, counters):   # MessageRefused: the caller drops the link
            if closed:
                continue
            try:
                replies.append(endpoint.send(reply))
            except SessionClosed:
                closed = True          # the agent still handles the rest (the Bye that ends it)
    return replies


def _agent_step(agent: AgentRuntime, link: InprocLink, data: bytes) -> list:
    """Feed bytes to an in-process agent; the bytes of its replies."""
    return agent_replies(agent, link.agent_end, link.agent_counters, data)


def run_inproc(run, agents, run_key: bytes, workers=None, log=print) -> dict:
    """Drive `run` (a fedzo.coordinator.run.lifecycle.Run) with in-process agents until it is done."""
    secrets = RejoinSecrets()
    links = [InprocLink(i, run_key, secrets) for i in range(len(agents))]
    hellos = [(link, link.agent_end.send(agent.hello())) for agent, link in zip(agents, links)]
    workers = workers or min(len(agents), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        drive(run.runtime, links, hellos, lambda batch: _step_in_pool(pool, agents, batch), log)
    return run.finish()


def _step_in_pool(pool, agents, batch) -> list:
    """Each (link, bytes) of `batch` to its agent in the pool; [(replies, None) or (None, why it drops)]."""
    jobs = [pool.submit(_agent_step, agents[link.index], link, data) for link, data in batch]
    out = []
    for job in jobs:
        try:
            out.append((job.result(), None))
        except AgentRefused as exc:
            out.append((None, f"refused to take part: {exc}"))
        except MessageRefused as exc:
            out.append((None, f"refused a message: {exc}"))
        except Exception as exc:   # an agent's failure must not stop the run
            out.append((None, f"failed: {exc!r}"))
    return out


def drive(runtime, links, to_coordinator, step, log=print):
    """The link loop until the run is done, over links that have a coordinator_end, a to_agent
    queue and a closed flag (InprocLink; the Ray link's too).

    `to_coordinator`: [(link, bytes)] already sent up (the Hellos). Each pass delivers what came
    up, ticks, then hands every open link's waiting bytes to the agents: step([(link, bytes)], in
    link order) returns, in the same order, (the agent's reply bytes, None) or (None, why the link
    drops). At the end the final Byes go to every agent, so each ends cleanly.
    """

    def dispatch(outputs):
        for link, msg in outputs:
            if link.closed:
                continue
            if msg is CLOSE:
                link.closed = True
            else:
                link.to_agent.append(link.coordinator_end.send(msg))
        runtime.after_dispatch()

    while not runtime.done:
        for link, data in to_coordinator:
            for msg in link.coordinator_end.feed(data):
                if link.closed:
                    break              # refused at the boundary: the rest is not read
                dispatch(deliver(runtime, link, msg, log))
        to_coordinator = []
        dispatch(runtime.tick())
        batch = [(link, _take_waiting(link)) for link in links if link.to_agent and not link.closed]
        if not batch:
            if not runtime.done:
                time.sleep(0.01)         # only deadlines can move the run now
            continue
        for (link, _), (replies, failure) in zip(batch, step(batch)):
            if failure is None:
                to_coordinator += [(link, data) for data in replies]
            else:
                log(f"agent {link.index}: {failure}")
                link.closed = True
                dispatch(runtime.disconnected(link))
    final = [(link, _take_waiting(link)) for link in links if link.to_agent]
    if final:
        step(final)


def _take_waiting(link) -> bytes:
    """The bytes queued for a link's agent, leaving its queue empty."""
    data, link.to_agent = b"".join(link.to_agent), []
    return data
