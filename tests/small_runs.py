"""Small in-process runs shared by the runtime, transport and board tests."""
from fedzo.coordinator.rounds.runtime import CLOSE
from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.inproc import InprocLink, run_inproc
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.learning.config import RunConfig
from fedzo.edge.protocol import RejoinSecrets

KEY = bytes.fromhex("5f0c9a2e71d4b8360a4e9c1f2b7d58e3a6c1049f7e2d5b8a3c6f9e0d1b4a7c25")

SUMMARY_FIELDS = {"algo", "task", "agents", "rounds", "episodes", "env_steps", "comparisons",
                  "return_initial", "return_final", "bytes_up", "bytes_down", "payload_bits_up",
                  "payload_bits_down", "per_agent"}
PER_AGENT_FIELDS = {"id", "bytes_up", "bytes_down", "peak_rss_bytes", "floor_rss_bytes",
                    "learning_state_bytes"}


def small_config(**overrides):
    fields = dict(task="hopper", agents=3, rounds=3, batch=1, comparisons=1, eval_every=0,
                  eval_episodes=1, seed=7)
    fields.update(overrides)
    return RunConfig(**fields)


def run_small(tmp_path, name="run", resume=False, **overrides):
    config = small_config(**overrides)
    run = Run(config, tmp_path / name, resume=resume, log=lambda *a: None)
    agents = [AgentRuntime(log=lambda *a: None, task=config.task) for _ in range(config.agents)]
    summary = run_inproc(run, agents, KEY, log=lambda *a: None)
    return run, agents, summary


class Harness:
    """A coordinator runtime and agents joined by in-memory links, stepped by hand."""

    def __init__(self, tmp_path, **overrides):
        self.config = small_config(**overrides)
        self.run = Run(self.config, tmp_path / "h", round_timeout=5.0, log=lambda *a: None)
        self.runtime = self.run.runtime
        self.secrets = RejoinSecrets()
        self.agents, self.links = [], []
        self.now = 0.0
        self.runtime.clock = lambda: self.now

    def connect(self, agent):
        """Link `agent` and let it say Hello and answer the Challenge with its Join."""
        link = InprocLink(len(self.links), KEY, self.secrets)
        self.agents.append(agent)
        self.links.append(link)
        self.deliver_up(link, link.agent_end.send(agent.hello()))
        self.step_agent(len(self.links) - 1)      # Challenge -> Join
        return link

    def deliver_up(self, link, data):
        for msg in link.coordinator_end.feed(data):
            self.dispatch(self.runtime.received(link, msg))

    def dispatch(self, outputs):
        for link, msg in outputs:
            if msg is CLOSE:
                link.closed = True
            elif not link.closed:
                link.to_agent.append(link.coordinator_end.send(msg))
        self.runtime.after_dispatch()

    def step_agent(self, i, before_round_start=None):
        """Let agent i handle what is queued for it; its replies go up."""
        from fedzo.edge.protocol import starts_round
        link, agent = self.links[i], self.agents[i]
        data, link.to_agent = b"".join(link.to_agent), []
        for msg in link.agent_end.feed(data):
            if before_round_start and starts_round(msg) is not None:
                before_round_start(agent)
            for reply in agent.handle(msg):
                self.deliver_up(link, link.agent_end.send(reply))

    def step_all(self, skip=()):
        for i in range(len(self.agents)):
            if i not in skip and not self.links[i].closed:
                self.step_agent(i)

    def finish(self):
        """Step every agent until the run is over."""
        for _ in range(50):
            if self.runtime.done:
                return
            self.step_all()
        raise AssertionError("the run did not finish")


def write_experiment(tmp_path, spec, name="exp.json"):
    """An experiment file holding `spec`, for load_experiment."""
    import json
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return path
