"""A Ray actor's worth of agents: their runtimes and the agent ends of their links.

Each agent keeps its own protocol Endpoint (an AGENT Session under the run key, its own
counters), exactly as the in-process link's agent end: the bytes that reach the actor
are the sealed frames the coordinator's end produced, and the bytes it returns are the
agent's sealed replies. Nothing here knows about Ray: ray_link.py makes the class an actor.
"""
from fedzo.coordinator.transports.inproc import agent_replies
from fedzo.edge.agent.boundary import MessageRefused
from fedzo.edge.agent.runtime import AgentRefused, AgentRuntime
from fedzo.edge.protocol import AGENT, Endpoint, LinkCounters, Session

# Outcome of one agent's step, as returned to the driver.
OK, REFUSED, MESSAGE_REFUSED, FAILED = "ok", "refused", "message-refused", "failed"


class AgentHost:
    """Several agents (by link index) living in one process."""

    def __init__(self, indices, run_key: bytes, task=None):
        self.agents, self.ends, self.counters = {}, {}, {}
        for index in indices:
            self.counters[index] = LinkCounters(f"ray-{index}-agent")
            self.ends[index] = Endpoint(Session(AGENT, run_key, counters=self.counters[index]))
            self.agents[index] = AgentRuntime(log=lambda *a: None, task=task)

    def hellos(self) -> list:
        """[(index, the sealed Hello)] for every agent held here."""
        return [(index, self.ends[index].send(agent.hello())) for index, agent in self.agents.items()]

    def step(self, batch) -> list:
        """batch: [(index, bytes from the coordinator)]; returns [(index, outcome, replies or reason)].

        An agent's failure is returned as its outcome, never raised: the other agents' replies
        in the batch still reach the coordinator (the in-process link drops just that agent).
        """
        out = []
        for index, data in batch:
            try:
                out.append((index, OK, self._replies(index, data)))
            except AgentRefused as exc:
                out.append((index, REFUSED, str(exc)))
            except MessageRefused as exc:
                out.append((index, MESSAGE_REFUSED, str(exc)))
            except Exception as exc:     # an agent's failure must not stop the others
                out.append((index, FAILED, repr(exc)))
        return out

    def _replies(self, index, data: bytes) -> list:
        return agent_replies(self.agents[index], self.ends[index], self.counters[index], data)
