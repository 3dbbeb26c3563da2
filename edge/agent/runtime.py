"""An agent's protocol state machine: decoded messages in, messages out.

It wraps the round logic of `fedzo.edge.learning.agent_logic` and knows nothing of
transports: the TCP client, the serial client and the in-process simulator
all feed it the messages their link delivers and send what it returns.

    hello()                     -> Hello (the first frame of every session)
    Refusal                     -> AgentRefused (the coordinator does not take this
                                   key, or speaks another version; refused.py)
    Challenge                   -> [Join] (first contact, or rejoin with round + hash);
                                   with a memory budget, first checks it against the
                                   run's terms (d, task, ...): BudgetTooSmall before any
                                   slot is taken (budget.py)
    Welcome                     -> set up task, store, policy; [] or [Error DIVERGED]
    RoundStart t                -> [Vote] (FedAvg: [ModelUpload..., Vote])
    RoundResult t               -> apply votes (FedAvg: the downloaded average);
                                   [] or [Error DIVERGED] if the hashes differ;
                                   after the last round, [Report]
    RoundResultNext t           -> RoundResult t, then RoundStart t + 1 (protocol 4:
                                   one frame down per steady round); no vote when
                                   the result left this replica out of step
    Sync / ModelDownload chunks -> assemble; a complete Sync replaces theta
    Error                       -> logged; REFUSALS raise AgentRefused; ID_IN_USE
                                   (another live session holds this id) ends the
                                   session: the transport joins again after a back-off
    Bye                         -> DONE, SHUTDOWN, PROTOCOL: done (a
                                   session is closed after Bye, which is why the
                                   Report goes first); EXCLUDED (its key was
                                   revoked): AgentRefused; REPLACED, TIMEOUT: this
                                   session is over but the run is not, so the
                                   transport joins again (REJOIN_BYES)

Who syncs after a Welcome (both sides apply the same rule): a first join at
round 0 of a run that starts from the packaged actor builds theta_0 locally
and checks the hash; every other case waits for the coordinator's Sync.
"""
import time

import numpy as np

from fedzo.edge import kernel
from fedzo.edge.agent import budget, memory
from fedzo.edge.agent.out_of_memory import is_out_of_memory
from fedzo.edge.agent.refused import REFUSALS, AgentDeclines, AgentRefused, refused_by_coordinator
from fedzo.edge.learning.agent_logic import FedAvgAgent, ParS2ZPOAgent
from fedzo.edge.learning.algorithm import ACTOR_DIR, starts_from_packaged_actor
from fedzo.edge.learning.config import parse_welcome_config, welcome_model_hash
from fedzo.edge.learning.fixedpoint import FixedPoint, ParameterStore
from fedzo.edge.learning.layout import mlp_param_count
from fedzo.edge.policy.mlp import Actor
from fedzo.edge.policy.workers import check_workers
from fedzo.edge.protocol import (
    ASSIGN_AGENT_ID,
    Bye,
    ByeReason,
    Capabilities,
    Challenge,
    Error,
    ErrorCode,
    Join,
    ModelDownload,
    ModelUpload,
    Refusal,
    Report,
    RoundResult,
    RoundResultNext,
    RoundStart,
    Sync,
    VectorAssembler,
    Vote,
    Hello,
    Welcome,
    model_chunks,
)
from fedzo.edge.tasks import make
from fedzo.edge.tasks.model_hash import model_hash
from fedzo.edge.tasks.plugins import agent_spec

__all__ = ["AgentRuntime", "AgentRefused", "REFUSALS", "REJOIN_BYES"]

# Byes that end a session but not the run: another session took this agent's id
# (which may have been a stranger's doing, so the agent claims it back), or the
# coordinator lost the link. The agent joins again.
REJOIN_BYES = (ByeReason.REPLACED, ByeReason.TIMEOUT)


class AgentRuntime:
    """One agent's side of a run, driven by messages."""

    def __init__(self, agent_id=ASSIGN_AGENT_ID, memory_budget=0, log=print, preference=None, task=None,
                 workers=1):
        """task: the spec of a user's task this agent may build (`fedzo agent --task`); a
        run whose task is a Python class or an MJCF file is refused without it. workers:
        processes that run a round's episodes (`--workers`, edge/policy/workers.py)."""
        self.agent_id = agent_id
        self.workers = check_workers(workers)
        self.task_spec = task
        self.memory_budget = int(memory_budget)
        self.log = log
        self.preference = preference
        self.logic = None            # ParS2ZPOAgent or FedAvgAgent, after the first Welcome
        self.round = None            # the round whose theta_t this replica holds
        self.synced = False          # theta is known to match the coordinator's
        self.done = False
        self.rejoin = False          # the session is over but the run is not: join again
        self.in_use_refusals = 0     # Error ID_IN_USE in a row (reset by a Welcome)
        self.voted = None            # the round of the last Vote sent
        self.out_of_order = 0        # round messages that started a round this agent cannot be in
        self.floor_rss = 0
        self._task = None            # (name, task) loaded for the budget check before joining
        self._sync = None
        self._download = None
        self._average = None

    # ---- outgoing ----

    def hello(self) -> Hello:
        """The first frame of a new session (the Join follows the coordinator's Challenge)."""
        self.rejoin = False
        return Hello()

    def join(self) -> Join:
        """The Join for a new session (a rejoin carries the round and hash we hold)."""
        caps = Capabilities(backend=kernel.backend(),
                            store_bits=16 if self.logic is None else 8 * self.logic.store.values.itemsize,
                            memory_budget=self.memory_budget)
        if self.logic is not None and self.synced:
            return Join(self.agent_id, caps, self.round, self.logic.digest())
        return Join(self.agent_id, caps)

    def report(self) -> Report:
        """This agent's work and memory figures (sent when the run ends)."""
        counters = self.logic.counters() if self.logic else {}
        return Report(
            round=self.round or 0,
            # With rollout workers, what they hold beyond the pages they share with this process.
            peak_rss=memory.peak_rss_bytes() + (self.logic.workers_unshared_bytes() if self.logic else 0),
            floor_rss=self.floor_rss,
            learning_state=self.logic.learning_state_bytes if self.logic else 0,
            episodes=counters.get("episodes", 0), env_steps=counters.get("env_steps", 0),
            comparisons=counters.get("comparisons", 0),
            reviewer_votes=counters.get("reviewer_votes", 0),
            saturations=counters.get("saturations", 0))

    # ---- incoming ----

    def handle(self, msg) -> list:
        """React to one message from the coordinator; returns the replies."""
        handler = {Challenge: self._on_challenge, Refusal: self._on_refusal, Welcome: self._on_welcome,
                   RoundStart: self._on_round_start,
                   RoundResult: self._on_round_result, RoundResultNext: self._on_round_result_next,
                   Sync: self._on_sync,
                   ModelDownload: self._on_download, Error: self._on_error,
                   Bye: self._on_bye}.get(type(msg))
        if handler is None:
            return [Error(ErrorCode.BAD_MESSAGE, f"agent does not expect {msg.NAME}")]
        return handler(msg)

    def waiting_for(self) -> str:
        """What this agent waits for now, for the lines of a long wait (waits.py)."""
        if self.logic is None:
            return "the coordinator to welcome this agent (joining)"
        if not self.synced:
            return "theta from the coordinator (a sync)"
        if self.round >= self.logic.config.rounds:
            return "the coordinator to end the run"
        if self.voted == self.round:
            return f"the result of round {self.round} (other agents are still voting)"
        if self.voted is None:
            return "the run to start (the coordinator starts it once every agent has joined)"
        return f"round {self.round} to start"

    def _on_refusal(self, msg: Refusal) -> list:
        raise refused_by_coordinator(msg.code)

    def _on_challenge(self, msg: Challenge) -> list:
        if self.memory_budget and self.logic is None and msg.terms is not None:
            # Decide before taking a slot (BudgetTooSmall: Error + Bye, no Join).
            self._task = budget.check_terms(self.memory_budget, msg.d, msg.terms, self._build_task)
        return [self.join()]

    def _on_welcome(self, msg: Welcome) -> list:
        self.in_use_refusals = 0
        config, obs_mean, obs_std, dtype, frac_bits = parse_welcome_config(msg.config)
        rejoining = self.logic is not None and self.synced
        if self.logic is None or self.logic.index != msg.agent_id or self.logic.store.d != msg.d:
            self._build(msg, config, obs_mean, obs_std, dtype, frac_bits)
        self.agent_id = msg.agent_id
        if starts_from_packaged_actor(not rejoining, msg.round, config):
            self.round = 0
            self.synced = self.logic.digest() == msg.theta_hash
            if not self.synced:
                return [Error(ErrorCode.DIVERGED, "theta_0 built from the packaged actor differs")]
        elif rejoining and (self.round, self.logic.digest()) == (msg.round, msg.theta_hash):
            self.synced = True
        elif rejoining and self.round < msg.round:
            # Behind by a few rounds: the coordinator sends the results it missed (each checked
            # against its hash) when they cost less than theta, or else a Sync; either way in order.
            self.synced = True
            self.log(f"agent {self.agent_id}: catching up from round {self.round} to {msg.round}")
        else:
            self.synced = False          # the coordinator sends a Sync
        self.log(f"agent {self.agent_id}: block {msg.block} of {msg.n_agents}, d = {msg.d}, "
                 f"round {msg.round}, {'in sync' if self.synced else 'waiting for sync'}")
        return [self.report()] if msg.round >= config.rounds else []

    def _build_task(self, run_spec: str):
        """The run's task as this agent builds it (a module or file only on its own --task)."""
        try:
            return make(agent_spec(run_spec, self.task_spec))
        except ValueError as exc:          # TaskError: one line naming the task, file or field
            if is_out_of_memory(exc):      # MuJoCo under a RAM cap: said as such by `fedzo agent`
                raise
            raise AgentDeclines(f"cannot build this run's task: {exc}") from None

    def _workers_in_budget(self, config, d, fmt) -> int:
        """The rollout processes this run gets: --workers, or fewer where the memory budget
        holds the agent but not all of them (said once in the log)."""
        learning = budget.learning_state_bound(config.algo, d, config.block_count, fmt.dtype.itemsize)
        fit = budget.workers_that_fit(self.memory_budget, self.floor_rss, learning, d, self.workers)
        if fit < self.workers:
            self.log(f"agent: a memory budget of {self.memory_budget / 2**20:.1f} MiB holds {fit} rollout "
                     f"process{'es' if fit > 1 else ''}, not {self.workers} (each more needs "
                     f"{budget.worker_bytes(d) / 2**20:.1f} MiB): using {fit}")
        return fit

    def _build(self, msg, config, obs_mean, obs_std, dtype, frac_bits):
        """Task, store and round logic for this run; checks the memory budget."""
        if (config.preference == "human") != (self.preference is not None and self.preference.is_person):
            raise AgentDeclines(f"this run's preferences come from {config.preference!r}; an agent answers a "
                               f"human run, and only a human run, with --human or --replay FILE")
        kept, self._task = self._task, None     # the task the budget check loaded, if any
        task = kept[1] if kept is not None and kept[0] == config.task else self._build_task(config.task)
        expected, mine = welcome_model_hash(msg.config), model_hash(task.model).hex()
        if expected is not None and expected != mine:
            raise AgentDeclines(f"compiled model {mine} here differs from the coordinator's {expected} "
                               f"for task {config.task}: both sides need the same MJCF and MuJoCo")
        self.floor_rss = memory.current_rss_bytes()   # interpreter + numpy + mujoco + task model
        fmt = FixedPoint(np.dtype(dtype), frac_bits)
        if mlp_param_count(task.obs_dim, task.act_dim, config.hidden_sizes) != msg.d:
            raise AgentDeclines(f"this run's policy has d = {msg.d} parameters; hidden {config.hidden} on this "
                               f"agent's {config.task} ({task.obs_dim} observations, {task.act_dim} actions) "
                               f"gives {mlp_param_count(task.obs_dim, task.act_dim, config.hidden_sizes)}")
        actor = Actor(config.task, task.obs_dim, task.act_dim, np.zeros(msg.d, np.float32),
                      np.asarray(obs_mean), np.asarray(obs_std), config.hidden_sizes)
        store = ParameterStore(np.zeros(msg.d, fmt.dtype), fmt)
        packaged = ACTOR_DIR / f"{config.task}.npz"
        if config.actor == "" and packaged.is_file():
            theta = Actor.load(packaged).theta
            if theta.size == msg.d:
                store.set_from_float(theta)
        cls = FedAvgAgent if config.algo == "fedavg-s2zpo" else ParS2ZPOAgent
        if self.logic is not None:
            self.logic.close()           # its workers hold the old block's task
        # The agent's index names its own streams (reset seeds, panel, tie bits); its block is
        # the same index unless the run is a fleet, where it follows each round's plan.
        logic = cls(config, msg.agent_id, store, task, actor, self.preference,
                    self._workers_in_budget(config, msg.d, fmt), self.log)
        # Checked before joining already (the Challenge's terms); again with the exact block.
        budget.check(self.memory_budget, self.floor_rss, logic.learning_state_bytes, config.task)
        self.logic = logic
        self._sync = VectorAssembler(expected_total=msg.d)
        self._download = VectorAssembler(expected_total=msg.d)

    def _on_round_start(self, msg: RoundStart) -> list:
        if self.logic is None:
            return [Error(ErrorCode.BAD_MESSAGE, "round_start before welcome")]
        if not self.synced or self.round != msg.round:
            # Not holding theta_t: abstain (the coordinator counts 0) and ask for theta.
            self.out_of_order += 1
            return [Error(ErrorCode.DIVERGED, f"holding round {self.round}, asked for {msg.round}")]
        if isinstance(self.logic, ParS2ZPOAgent) and self.logic.block_in(msg.round) is None:
            # Every replica knows the round's plan: a RoundStart for an agent it leaves out is wrong.
            return [Error(ErrorCode.BAD_MESSAGE, f"agent {self.agent_id} is not asked in round {msg.round}")]
        digest = self.logic.digest()   # of theta_t, before any local step
        started, episodes = time.monotonic(), self.logic.episodes
        if isinstance(self.logic, FedAvgAgent):
            vote, model = self.logic.local_model(msg.round)
            replies = model_chunks(ModelUpload, msg.round, model) + [Vote(msg.round, vote, digest)]
        else:
            vote = self.logic.vote(msg.round)
            replies = [Vote(msg.round, vote, digest)]
        self.voted = msg.round
        self.log(f"agent {self.agent_id}: round {msg.round} ({msg.round + 1}/{self.logic.config.rounds}) "
                 f"vote {vote:+d} ({self.logic.episodes - episodes} episodes, "
                 f"{time.monotonic() - started:.1f} s)")
        return replies

    def _on_round_result(self, msg: RoundResult) -> list:
        if self.logic is None or not self.synced or self.round != msg.round:
            return []                                 # a Sync will bring us up to date
        if isinstance(self.logic, FedAvgAgent):
            if self._average is None:
                self.synced = False
                return [Error(ErrorCode.DIVERGED, f"no averaged model for round {msg.round}")]
            self.logic.apply(msg.round, self._average)
            self._average = None
        else:
            self.logic.apply(msg.round, list(msg.votes))
        self.round = msg.round + 1
        if self.logic.digest() != msg.theta_hash:
            self.synced = False
            return [Error(ErrorCode.DIVERGED, f"theta differs after round {msg.round}")]
        return [self.report()] if self.round == self.logic.config.rounds else []

    def _on_round_result_next(self, msg: RoundResultNext) -> list:
        replies = self._on_round_result(msg)
        if any(isinstance(r, Error) for r in replies):
            return replies                            # out of step: it asked for theta, it does not vote
        if self.logic is not None and msg.next_round >= self.logic.config.rounds:
            self.out_of_order += 1
            return replies + [Error(ErrorCode.BAD_MESSAGE, f"{msg.NAME} starts round {msg.next_round}, "
                                                           f"past the run's {self.logic.config.rounds}")]
        return replies + self._on_round_start(RoundStart(msg.next_round))

    def _on_sync(self, msg: Sync) -> list:
        if self.logic is None:
            return [Error(ErrorCode.BAD_MESSAGE, "sync before welcome")]
        theta = self._sync.add(msg)
        if theta is None:
            return []
        store = self.logic.store
        if msg.dtype != store.fmt.dtype.name or msg.frac_bits != store.fmt.frac_bits:
            return [Error(ErrorCode.INCOMPATIBLE, "sync in another fixed-point format")]
        store.values[:] = theta
        self.logic.policy.refresh(store)
        self.round, self.synced = msg.round, True
        self.log(f"agent {self.agent_id}: synced theta at round {msg.round}")
        return []

    def _on_download(self, msg: ModelDownload) -> list:
        if self.logic is None:
            return [Error(ErrorCode.BAD_MESSAGE, "model_download before welcome")]
        model = self._download.add(msg)
        if model is not None:
            self._average = model
        return []

    def _on_error(self, msg: Error) -> list:
        if msg.code in REFUSALS:
            # Not a passing fault: retrying would be refused the same way.
            raise refused_by_coordinator(msg.code, msg.text)
        if msg.code == ErrorCode.ID_IN_USE:
            # Another live session holds our id: try again later (transports back off).
            # Said on the first refusal and every tenth, not on each retry.
            self.in_use_refusals += 1
            self.rejoin = True
            if self.in_use_refusals % 10 == 1:
                self.log(f"agent {self.agent_id}: {msg.text}; trying again ({self.in_use_refusals} so far)")
            return []
        self.log(f"agent {self.agent_id}: coordinator says error {msg.code}: {msg.text}")
        return []

    def _on_bye(self, msg: Bye) -> list:
        if msg.code in REJOIN_BYES:
            self.rejoin = True
            self.log(f"agent {self.agent_id}: session ended ({msg.text or msg.code}); joining again")
            return []
        self.done = True
        if self.logic is not None:
            self.logic.close()
        if msg.code == ByeReason.EXCLUDED:
            # Dropped from the run (its own key revoked): joining again would be refused.
            raise AgentRefused(f"the coordinator excluded this agent: {msg.text or 'no reason given'}")
        self.log(f"agent {self.agent_id}: run over ({msg.text or msg.code})")
        return []
