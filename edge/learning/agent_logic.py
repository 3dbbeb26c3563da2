"""An agent's side of a round, for both algorithms (DESIGN.md §2, steps 2, 3 and 5).

These classes know nothing of transports: the runtime hands them a round
number or a round's result and sends back what they return. Both keep one
replica of theta in a fixed-point store and a policy that reads it.

Within a round, the N comparisons use common reset seeds: the baseline batch
and the candidate batch of comparison n start from the same D initial states,
so that the panel compares the policies, not the luck of the draw.

The baseline is theta itself (the paper's one-sided comparison), or, with
`comparison = "symmetric"`, theta - mu v: the two batches then differ by
2 mu v, which doubles the return difference the panel sees for the same
episodes (a measured option, not the default).
"""
import time

import numpy as np

from fedzo.edge.agent.memory import unshared_memory
from fedzo.edge.learning import perturbation, streams
from fedzo.edge.learning.algorithm import (
    agent_vote,
    apply_par_update,
    fedavg_round_index,
)
from fedzo.edge.learning.fleet import NOT_ASKED, round_plan
from fedzo.edge.learning.layout import block_bounds
from fedzo.edge.learning.preference import Batch, Where, make_preference
from fedzo.edge.policy.rollout import run_batch
from fedzo.edge.policy.workers import Rollouts


class AgentBase:
    """What both algorithms' agents share: replica, policy, rollouts, counters."""

    def __init__(self, config, index, store, task, actor, preference=None, workers=1, log=print):
        """workers: processes that run the round's episodes (edge/policy/workers.py); a
        source that shows the episodes to a person runs them here, on one."""
        self.config, self.index, self.store, self.task = config, index, store, task
        # training episodes end at the run's horizon, never past the task's own limit
        task.max_episode_steps = min(config.horizon, task.max_episode_steps)
        low, high = task.model.actuator_ctrlrange.T
        self.policy = actor.policy(low, high)
        self.policy.refresh(store)
        self.preference = preference or make_preference(config)
        # Only a source that shows the episodes (a person's) records them.
        self.recorder = self.preference.clip_recorder(task)
        # Forked here, once: after the task and the policy exist, before anything large.
        self.rollouts = Rollouts(task, self.policy, workers if self.recorder is None else 1, log)
        self.mu_steps = store.fmt.steps(config.mu)
        self.alpha_steps = store.fmt.steps(config.alpha)
        self.episodes = 0
        self.env_steps = 0

    def _compare(self, stream, round_, start, stop, scratch) -> int:
        """N comparisons of theta vs theta + mu v on [start, stop): the summed outcomes."""
        config = self.config
        started = time.monotonic()      # shown to a person (how long the round can wait); never learned from
        batches = self._batches(round_)
        if self.recorder is not None or self.rollouts.live_workers == 1:
            # in this process: perturb the store in place, nothing proportional to d allocated
            baselines, candidates = self._compare_here(batches, stream, round_, start, stop, scratch)
        else:
            baselines, candidates = self._compare_batches(batches, stream, round_, start, stop, scratch)
        total = 0
        for n, (candidate, baseline) in enumerate(zip(candidates, baselines)):
            rng = streams.generator(config.seed, streams.PURPOSE_PANEL, self.index, round_, n)
            total += self.preference.compare(candidate, baseline, rng, Where(self.index, round_, n, started))
        return total

    def _compare_batches(self, batches, stream, round_, start, stop, scratch) -> tuple:
        """(baselines, candidates): every episode of the comparisons in one call of the
        rollout pool, under the two parameter vectors (variant 0 the baseline, 1 the candidate),
        the same episodes `_compare_here` runs, hence the same returns."""
        variants, jobs = self._episodes(batches, stream, round_, start, stop, scratch)
        returns, steps = self.rollouts.run(variants, jobs)
        self.policy.refresh(self.store)    # the rollouts left a variant loaded
        out, i = ([], []), 0
        for variant in (0, 1):
            for b in batches:
                n = len(b)
                out[variant].append(Batch(returns=returns[i:i + n], episode_seeds=list(b),
                                          steps=int(steps[i:i + n].sum())))
                i += n
        self.episodes += len(jobs)
        self.env_steps += int(steps.sum())
        return out

    def _episodes(self, batches, stream, round_, start, stop, scratch) -> tuple:
        """(variants, jobs) of the comparisons: the baseline's and the candidate's float
        parameters, and one (variant, reset seed) per episode, baselines first."""
        if self.config.comparison == "symmetric":
            baseline = self._perturbed_theta(stream, round_, start, stop, -self.mu_steps, scratch)
        else:
            baseline = self.policy.theta.copy()
        candidate = self._perturbed_theta(stream, round_, start, stop, self.mu_steps, scratch)
        return (baseline, candidate), [(variant, seed) for variant in (0, 1) for b in batches for seed in b]

    def _batches(self, round_) -> list:
        """The reset seeds of round t's N comparisons, D per batch."""
        config = self.config
        seeds = streams.reset_seeds(config.seed, self.index, round_, config.comparisons * config.batch)
        return [seeds[n * config.batch:(n + 1) * config.batch] for n in range(config.comparisons)]

    def _perturbed_theta(self, stream, round_, start, stop, steps, scratch) -> np.ndarray:
        """The policy's float parameters under theta + steps * v on [start, stop) (a copy);
        the store and the policy are left at theta, exactly."""
        config = self.config
        perturbation.perturb(self.store, config.perturbation, start, stop, config.seed, stream,
                             round_, steps, scratch)
        self.policy.refresh(self.store, start, stop)
        theta = self.policy.theta.copy()
        self.store.restore(start, stop, scratch)
        self.policy.refresh(self.store, start, stop)
        return theta

    def _compare_here(self, batches, stream, round_, start, stop, scratch) -> tuple:
        """(baselines, candidates), every episode in this process (one worker, or a person's
        run: then with each episode's clip)."""
        if self.config.comparison == "symmetric":
            baselines = self._rollouts_perturbed(batches, stream, round_, start, stop, -self.mu_steps, scratch)
        else:
            baselines = [self._rollouts(b) for b in batches]
        candidates = self._rollouts_perturbed(batches, stream, round_, start, stop, self.mu_steps, scratch)
        return baselines, candidates

    def _rollouts_perturbed(self, batches, stream, round_, start, stop, steps, scratch) -> list:
        """The batches under theta + steps * v on [start, stop); theta is restored exactly after."""
        config = self.config
        perturbation.perturb(self.store, config.perturbation, start, stop, config.seed, stream,
                             round_, steps, scratch)
        self.policy.refresh(self.store, start, stop)
        out = [self._rollouts(b) for b in batches]
        self.store.restore(start, stop, scratch)
        self.policy.refresh(self.store, start, stop)
        return out

    def _rollouts(self, reset_seeds):
        batch = run_batch(self.task, self.policy, reset_seeds, self.recorder)
        self.episodes += len(reset_seeds)
        self.env_steps += batch.steps
        return batch

    def workers_unshared_bytes(self) -> int:
        """Memory the rollout workers hold now beyond what they share with the agent (their
        USS; 0 without workers or where the system does not say)."""
        return sum(unshared_memory(pid).get("uss", 0) for pid in self.rollouts.pids())

    def close(self) -> None:
        """Stop the rollout workers (a replaced or finished agent)."""
        self.rollouts.close()

    def digest(self) -> bytes:
        """Short hash of this replica's theta."""
        return self.store.digest()

    def counters(self) -> dict:
        """Work done so far by this agent."""
        return {"episodes": self.episodes, "env_steps": self.env_steps,
                "comparisons": self.preference.comparisons,
                "reviewer_votes": self.preference.reviewer_votes,
                "saturations": self.store.saturations}


class ParS2ZPOAgent(AgentBase):
    """Agent k of Par-S2ZPO: perturbs its round's block (block k unless the run is a fleet,
    edge/learning/fleet.py), votes, applies the K block votes."""

    def __init__(self, config, index, store, task, actor, preference=None, workers=1, log=print):
        super().__init__(config, index, store, task, actor, preference, workers, log)
        # Room for the largest block (blocks differ by at most one parameter): in a fleet
        # an agent's block changes from round to round.
        largest = -(-store.d // config.block_count)
        self.scratch = store.scratch(0, largest)   # the one block-sized buffer

    def block_in(self, round_: int) -> int | None:
        """The block this agent evaluates in round t (k itself unless the run is a fleet),
        or None if the round's plan does not ask it."""
        config = self.config
        block = int(round_plan(config.seed, round_, config.agents, config.block_count,
                               config.per_round).block_of[self.index])
        return None if block == NOT_ASKED else block

    def vote(self, round_: int) -> int:
        """Steps 2-3: compare theta_t with theta_t + mu v_{t,b} on this round's block b; one vote."""
        block, start, stop = self._round_block(round_)
        total = self._compare(streams.block_stream(block), round_, start, stop, self.scratch[:stop - start])
        return agent_vote(total, self.config.seed, self.index, round_)

    def apply(self, round_: int, votes) -> None:
        """Step 5: apply the K block votes of round t to this replica."""
        apply_par_update(self.store, self.config.seed, self.config.block_count, round_, votes,
                         self.alpha_steps, self.config.perturbation)
        self.policy.refresh(self.store)

    def round_episodes(self, round_: int) -> tuple:
        """(variants, jobs) of round t's comparisons, as `vote` runs them (for `fedzo bench rollout`)."""
        block, start, stop = self._round_block(round_)
        return self._episodes(self._batches(round_), streams.block_stream(block), round_, start, stop,
                              self.scratch[:stop - start])

    def _round_block(self, round_: int) -> tuple:
        """(block, start, stop) this agent evaluates in round t; ValueError if it is not asked."""
        block = self.block_in(round_)
        if block is None:
            raise ValueError(f"agent {self.index} is not asked in round {round_}")
        return (block, *block_bounds(self.store.d, self.config.block_count, block))

    @property
    def learning_state_bytes(self) -> int:
        """theta, the block scratch and the policy's float copy of theta."""
        return self.store.nbytes + self.scratch.nbytes + self.policy.theta.nbytes


class FedAvgAgent(AgentBase):
    """Agent k of FedAvg-S2ZPO: E local sign steps on the whole vector, then averaging."""

    def __init__(self, config, index, store, task, actor, preference=None, workers=1, log=print):
        super().__init__(config, index, store, task, actor, preference, workers, log)
        self.scratch = store.scratch(0, store.d)
        self.upload = np.empty(store.d, np.float32)

    def local_model(self, round_: int) -> tuple:
        """E local steps theta_k += alpha * vote * v; returns (last vote, float32 model)."""
        config = self.config
        stream = streams.stream_id(streams.PURPOSE_FEDAVG_VECTOR, self.index)
        vote = 0
        for step in range(config.local_steps):
            sub_round = fedavg_round_index(round_, config.local_steps, step)
            total = self._compare(stream, sub_round, 0, self.store.d, self.scratch)
            vote = agent_vote(total, config.seed, self.index, sub_round)
            perturbation.update(self.store, config.perturbation, 0, self.store.d, config.seed, stream,
                                sub_round, vote * self.alpha_steps)
            self.policy.refresh(self.store)
        return vote, self.store.to_float(self.upload)

    def apply(self, round_: int, average: np.ndarray) -> None:
        """Take the coordinator's averaged model as this replica's theta."""
        self.store.set_from_float(average)
        self.policy.refresh(self.store)

    @property
    def learning_state_bytes(self) -> int:
        """theta, the whole-vector scratch, the upload buffer and the policy's float theta."""
        return self.store.nbytes + self.scratch.nbytes + self.upload.nbytes + self.policy.theta.nbytes
