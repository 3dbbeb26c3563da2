"""One coordinator run: the store, the round state machine, evaluation and the run folder.

Every transport (in-process, TCP, serial) builds a `Run`, feeds its
`runtime` the link events, and calls `finish()` at the end. After each
round `Run` counts the work, evaluates when due, prints one progress line,
appends the round's metrics and writes an atomic checkpoint; `--resume`
continues from that checkpoint and ends bit-identical to an uninterrupted run.

The evaluation, the metrics line, the checkpoint and the progress line of a
round are its record, written in round order by a Recorder: at once in the
in-process link, on a worker thread when a server serves the run
(`record_in_background`), so its loop keeps serving the links meanwhile. The
next round starts as soon as a round closes, whether its record is written or
not: the record works on its own copy of theta and of the counts as of that
round, so it comes out the same either way.
"""
import time
from collections import Counter
from dataclasses import replace

import numpy as np

from fedzo.coordinator.rounds.runtime import CoordinatorRuntime
from fedzo.coordinator.run.evaluate import evaluate, summarise
from fedzo.coordinator.run.folder import BYTE_COLUMNS, CHECKPOINT, CONFIG, SUMMARY, RunFolder
from fedzo.coordinator.run.recorder import Recorder
from fedzo.edge.learning import streams
from fedzo.edge.learning.algorithm import initial_store, load_actor
from fedzo.edge.learning.config import ConfigError, RunConfig, welcome_config
from fedzo.edge.learning.fixedpoint import FixedPoint, ParameterStore
from fedzo.edge.protocol import MAX_CONFIG_BYTES, LinkCounters, config_json
from fedzo.edge.protocol.accounting import Tally
from fedzo.edge.tasks import make
from fedzo.edge.tasks.model_hash import model_hash

ROUND_SUMS_KEPT = 8      # rounds whose run-wide byte sums are kept after they close (late messages)
LINK_ROUNDS_KEPT = 64    # rounds whose counts each agent link keeps itself (fedzo bench link reads them)


def byte_entry(row) -> dict:
    """One agent's row of the byte table as {"up": {field: n}, "down": {...}}."""
    out = {"up": {}, "down": {}}
    for (direction, field), value in zip(BYTE_COLUMNS, row):
        out[direction][field] = int(value)
    return out


def transport_figures(links, counters: LinkCounters) -> dict:
    """What the links of one slot carried besides messages, for its per_agent record.

    Every transport: wire bytes (frames + other bytes: retransmissions, acks,
    rejected input) and rejections by reason. Links with `transport_stats()`
    (TCP, serial) add theirs; numbers are summed over the slot's links, and
    for serial links that includes time on the wire at their baud rate.
    """
    up, down = counters.total["up"], counters.total["down"]
    out = {"transport": None, "wire_bytes_up": up.wire_bytes, "wire_bytes_down": down.wire_bytes,
           "other_bytes_up": up.other_bytes, "other_bytes_down": down.other_bytes,
           "rejected_by_reason": {r: n for r, n in counters.rejected.items() if n}}
    kinds = []
    for link in links:
        stats = link.transport_stats() if hasattr(link, "transport_stats") else {}
        kinds.append(stats.get("transport") or getattr(link, "transport", "inproc"))
        for key, value in stats.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "baud":
                out[key] = out.get(key, 0) + value
            elif key not in ("transport",):
                out.setdefault(key, value)
    if kinds:
        out["transport"] = kinds[0] if len(set(kinds)) == 1 else "+".join(sorted(set(kinds)))
    return out


def _panel_scale(config: RunConfig):
    """The panel's scale c, or None for a run that has none (a user's task under the coin)."""
    try:
        return config.scale
    except ConfigError:
        return None


class Run:
    """A run of the coordinator; see the module docstring."""

    def __init__(self, config: RunConfig, out_dir, *, resume=False, extend=False, round_timeout=120.0,
                 join_timeout=None, quorum=None, log=print, plots=True):
        """resume: continue the run in out_dir (it must exist); extend: with resume, config may
        have more rounds than the folder's (the caller then saves the new config.json)."""
        self.config, self.log, self.plots = config, log, plots
        self.folder = RunFolder(out_dir, create=not resume)
        self.task = make(config.task)
        actor = load_actor(config)
        if config.preference == "panel":
            config.scale          # a user's task must say its panel scale: refused here, before any round
        # Evaluation always reaches the task's own time limit, and also the
        # training horizon when that is shorter (evaluate.py says why).
        self.time_limit = self.task.max_episode_steps
        self.eval_horizons = sorted({self.time_limit, min(config.horizon, self.time_limit)})
        low, high = self.task.model.actuator_ctrlrange.T
        self.eval_policy = actor.policy(low, high)
        self.eval_seeds = streams.eval_seeds(config.seed, config.eval_episodes)
        self.totals = {"episodes": 0, "comparisons": 0, "wall_seconds": 0.0,
                       "return_initial": None, "saturated": 0}
        # Per-agent byte totals of earlier processes of this run (after --resume): a row
        # per agent id, columns BYTE_COLUMNS.
        self.bytes_before = np.zeros((config.agents, len(BYTE_COLUMNS)), np.int64)
        start_round = 0
        if resume:
            store, start_round = self._resume(config, actor, extend)
        else:
            store = initial_store(config, actor)
            self.folder.write_json(CONFIG, config.to_dict())
            self.folder.truncate_metrics(0)
        self.store = store
        welcome = welcome_config(config, actor.obs_mean, actor.obs_std, store.fmt.dtype.name,
                                 store.fmt.frac_bits, model_hash(self.task.model))
        size = len(config_json(welcome).encode("utf-8"))
        if size > MAX_CONFIG_BYTES:      # refused now, not when the first agent joins
            raise ValueError(f"the Welcome's config would be {size} bytes, more than the {MAX_CONFIG_BYTES} the "
                             f"wire carries: {config.task} has {self.task.obs_dim} observations, whose mean "
                             f"and std travel in it")
        # Rounds are recorded in order by the recorder (coordinator/run/recorder.py); the
        # run's Bye waits until every round is, so a run that ends has its checkpoint.
        self.recorder = Recorder()
        self.checkpointed_rounds = start_round   # rounds the checkpoint on disk holds
        # Running byte sums per agent and per round, fed by the agents' links as they count.
        self.tally = Tally()
        self.runtime = CoordinatorRuntime(config, store, welcome, start_round=start_round,
                                          round_timeout=round_timeout, join_timeout=join_timeout,
                                          quorum=quorum, on_round_closed=self._after_round,
                                          on_link_added=self._follow_link,
                                          hold_finish=lambda: not self.recorder.settled, log=log)
        self.started = time.monotonic()
        self._pace_start = None     # (time, rounds done) when this process's first round closed
        self.elapsed_before = self.totals["wall_seconds"]
        if self.totals["return_initial"] is None:
            self.totals["evaluation_initial"] = self._evaluate()
            self.totals["return_initial"] = self.totals["evaluation_initial"]["mean"]
        self.last_evaluation = self.totals.get("evaluation_last") or self.totals["evaluation_initial"]
        fleet = "" if config.block_count == config.agents else f" over {config.agents} agents"
        self.log(f"{config.algo} on {config.task}: K = {config.block_count}{fleet}, T = {config.rounds}, "
                 f"d = {store.d}, alpha = {config.alpha} ({self.runtime.alpha_steps} LSB), "
                 f"mu = {config.mu} ({store.fmt.steps(config.mu)} LSB), store {store.fmt.dtype.name} "
                 f"2^-{store.fmt.frac_bits}; return at start {self.totals['return_initial']:.1f} "
                 f"({self.time_limit}-step episodes{self._horizon_note()})")

    def _resume(self, config, actor, extend=False):
        try:
            saved = RunConfig.from_dict(self.folder.read_json(CONFIG))
        except ConfigError as exc:
            raise ConfigError(f"{self.folder.path / CONFIG}: {exc}") from exc
        extended = extend and config.rounds > saved.rounds and replace(saved, rounds=config.rounds) == config
        if saved != config and not extended:
            raise ValueError(f"--resume: the run folder's config differs from this one "
                             f"({self.folder.path / CONFIG})")
        checkpoint = self.folder.load_checkpoint(actor.theta.size)
        self._check_checkpoint(checkpoint, saved, initial_store(saved, actor).fmt)
        fmt = FixedPoint(checkpoint["values"].dtype, checkpoint["frac_bits"])
        store = ParameterStore(checkpoint["values"], fmt)
        self.totals.update(checkpoint["totals"])
        self.totals.pop("agent_bytes", None)      # where checkpoints before the byte table kept it
        table = checkpoint["agent_bytes"]
        if len(table):                            # none: a checkpoint from before any byte counts
            if table.shape != self.bytes_before.shape:
                raise ValueError(f"{self.folder.path / CHECKPOINT}: agent_bytes has {len(table)} rows, "
                                 f"the run has {config.agents} agents")
            self.bytes_before = table
        self.folder.truncate_metrics(checkpoint["next_round"], log=self.log)
        self.log(f"resuming at round {checkpoint['next_round']} from {self.folder.path}")
        return store, checkpoint["next_round"]

    def _check_checkpoint(self, checkpoint, saved: RunConfig, start: FixedPoint) -> None:
        """Refuse a checkpoint that cannot belong to the run of config.json (an edited or
        misplaced file): a round past its end, another storage type or scale than the run
        started with (`start`; its size is checked as it is read)."""
        path = self.folder.path / CHECKPOINT
        if checkpoint["next_round"] > saved.rounds:
            raise ValueError(f"{path}: next_round {checkpoint['next_round']} is past the run's "
                             f"{saved.rounds} rounds ({self.folder.path / CONFIG})")
        if checkpoint["values"].dtype != start.dtype:
            raise ValueError(f"{path}: theta is {checkpoint['values'].dtype.name}, the run stores "
                             f"{start.dtype.name}")
        if checkpoint["frac_bits"] != start.frac_bits:
            raise ValueError(f"{path}: frac_bits {checkpoint['frac_bits']}, the run uses {start.frac_bits}")

    # ---- after every round ----

    def _horizon_note(self) -> str:
        if self.config.horizon >= self.time_limit:
            return ""
        return f"; training at {self.config.horizon} steps"

    def _evaluate(self, store=None) -> dict:
        """theta's true return at the task's time limit (mean, se, ..., and each episode's),
        plus, when the run trains at a shorter horizon, at that horizon (`train_horizon`)."""
        self.eval_policy.refresh(store or self.store)
        returns = evaluate(self.task, self.eval_policy, self.eval_seeds, self.eval_horizons)
        out = {**summarise(returns[self.time_limit]), "horizon": self.time_limit,
               "returns": [float(r) for r in returns[self.time_limit]]}
        if self.config.horizon < self.time_limit:
            out["train_horizon"] = {**summarise(returns[self.config.horizon]), "horizon": self.config.horizon}
        return out

    def link_counters(self) -> list:
        """(agent id, LinkCounters summed over its links in this process) for every slot."""
        out = []
        for slot in self.runtime.slots:
            total = LinkCounters(f"agent-{slot.agent_id}")
            for link in slot.links:
                total.merge(link.counters)
            out.append((slot.agent_id, total))
        return out

    def _follow_link(self, slot, link) -> None:
        """An agent joined over `link`: its counts go to the run's tally from now on."""
        link.counters.attach(self.tally, slot.agent_id, LINK_ROUNDS_KEPT)

    def agent_byte_table(self) -> np.ndarray:
        """Per agent (row = agent id) the whole run's byte totals, columns BYTE_COLUMNS: this
        process's, from the run's tally, plus those of earlier processes of the run."""
        # Read after every round over every agent (issue 13: a thousand of them), so one
        # flat table: a row of six ints an agent, kept as an array in the checkpoint.
        rows = []
        for slot in self.runtime.slots:
            stats = self.tally.key_stats(slot.agent_id)
            up, down = stats["up"], stats["down"]
            rows.append((up.frame_bytes, up.payload_bits, up.wire_bytes,        # BYTE_COLUMNS' order
                         down.frame_bytes, down.payload_bits, down.wire_bytes))
        return np.array(rows, np.int64) + self.bytes_before

    def agent_bytes(self) -> dict:
        """Per agent and direction: frame bytes, payload bits and wire bytes, whole run."""
        return {str(slot.agent_id): byte_entry(row) for slot, row in zip(self.runtime.slots, self.agent_byte_table())}

    def _round_bytes(self, round_number) -> dict:
        """Frame bytes and payload bits of one round, all agents' links."""
        stats = self.tally.round_stats(round_number)
        # A late message of a closed round still counts in its link's own counters; the
        # run-wide sums of rounds long closed are read no more.
        self.tally.forget_rounds_before(round_number - ROUND_SUMS_KEPT)
        return {"bytes_up": stats["up"].frame_bytes, "bytes_down": stats["down"].frame_bytes,
                "payload_bits_up": stats["up"].payload_bits, "payload_bits_down": stats["down"].payload_bits}

    def _after_round(self, info: dict) -> None:
        """Round t closed and its results were handed to the links: count its work, then leave
        the rest (evaluation, metrics line, checkpoint, progress line) to the recorder."""
        config, t = self.config, info["round"]
        per_vote = config.comparisons * (config.local_steps if config.algo == "fedavg-s2zpo" else 1)
        self.totals["comparisons"] += info["voters"] * per_vote
        self.totals["episodes"] += info["voters"] * per_vote * 2 * config.batch
        self.totals["saturated"] += info["saturated"]
        # Read now what the loop goes on changing while the recorder works: the totals
        # and the links' byte counts as of this round.
        counts = {key: self.totals[key] for key in ("episodes", "comparisons", "saturated")}
        round_bytes, agent_bytes = self._round_bytes(t), self.agent_byte_table()
        self.recorder.submit(lambda: self._record(info, counts, round_bytes, agent_bytes))

    def _record(self, info: dict, counts: dict, round_bytes: dict, agent_bytes: np.ndarray) -> None:
        """Round t's record, in round order (the recorder's thread when a server runs the run):
        evaluate theta_{t+1} when due, append the metrics line, write the checkpoint, log."""
        config, t = self.config, info["round"]
        done = t + 1
        theta = ParameterStore(info["theta"], self.store.fmt)    # theta right after round t
        evaluation = None
        if done == config.rounds or (config.eval_every and done % config.eval_every == 0):
            evaluation = self._evaluate(theta)
            self.last_evaluation = self.totals["evaluation_last"] = evaluation
        elapsed = self.elapsed_before + time.monotonic() - self.started
        self.totals["wall_seconds"] = elapsed
        record = {"round": t, "votes": info["votes"], "voters": info["voters"], "absent": info["absent"],
                  "episodes": counts["episodes"], "comparisons": counts["comparisons"],
                  **self._return_fields(evaluation),
                  "saturated": info["saturated"], "theta_hash": info["theta_hash"],
                  "elapsed_s": round(elapsed, 3), **round_bytes}
        if config.block_count != config.agents or config.per_round:
            # A fleet: each agent's own vote too (agent id -> vote; JSON keys are strings).
            record["agent_votes"] = {str(a): v for a, v in sorted(info["agent_votes"].items())}
        if info["abstained"]:
            record["abstained"] = info["abstained"]      # votes of 0: agents that did no rollouts
        self.folder.append_metrics(record)
        self.folder.save_checkpoint(theta.values, self.store.fmt.frac_bits, done,
                                    {**self.totals, **counts}, agent_bytes)
        self.checkpointed_rounds = done
        left = self._time_left(done)
        shown = f"{self.last_evaluation['mean']:.1f}" + ("" if evaluation else " (earlier)")
        absent = f" | absent {','.join(map(str, info['absent']))}" if info["absent"] else ""
        self.log(f"round {t} ({done}/{config.rounds} done) | return {shown} | "
                 f"votes {''.join('+' if v > 0 else '-' if v < 0 else '0' for v in info['votes'])}{absent} | "
                 f"comparisons {counts['comparisons']} | elapsed {elapsed:.0f} s | "
                 f"left {left}")

    def record_in_background(self) -> None:
        """Evaluate and write each round's record on a worker thread, so that the caller's loop
        (a server serving links) never waits for it; call before the first round closes."""
        self.recorder.background = True

    def check(self) -> None:
        """Raise what failed in a round's record (a full disk, a failed evaluation), if anything did."""
        self.recorder.check()

    def _time_left(self, done: int) -> str:
        """The time the remaining rounds should take, at the pace since this process's first
        round closed (the first round also paid for the agents' start and the first evaluation,
        which made an estimate from it 2.5 times too long)."""
        now = time.monotonic()
        if self._pace_start is None:
            self._pace_start = (now, done)
            return "~? s (after the next round)" if done < self.config.rounds else "~0 s"
        since, first_done = self._pace_start
        pace = (now - since) / max(done - first_done, 1)
        return f"~{pace * (self.config.rounds - done):.0f} s"

    def _return_fields(self, evaluation) -> dict:
        """A round's metrics fields for an evaluation (None where the round was not evaluated)."""
        full = evaluation or {}
        out = {"return": full.get("mean"), "return_se": full.get("se"), "return_std": full.get("std")}
        if self.config.horizon < self.time_limit:
            out["return_train_horizon"] = full.get("train_horizon", {}).get("mean")
        return out

    def evaluation_summary(self) -> dict:
        """The summary's return fields: at the time limit (the headline), the gain with its
        standard error (paired by evaluation episode), and at the training horizon if shorter."""
        first, last = self.totals["evaluation_initial"], self.last_evaluation
        gains = np.subtract(last["returns"], first["returns"])
        out = {"eval_horizon": self.time_limit, "train_horizon": min(self.config.horizon, self.time_limit),
               "eval_episodes": len(first["returns"]),
               "return_initial": first["mean"], "return_final": last["mean"],
               "return_initial_se": first["se"], "return_final_se": last["se"],
               "gain": float(gains.mean()), "gain_se": summarise(gains)["se"],
               "eval_returns_initial": first["returns"], "eval_returns_final": last["returns"]}
        if "train_horizon" in first:
            out["return_initial_train_horizon"] = first["train_horizon"]["mean"]
            out["return_final_train_horizon"] = last["train_horizon"]["mean"]
            out["return_final_train_horizon_se"] = last["train_horizon"]["se"]
        return out

    # ---- the end ----

    def _errors(self) -> list:
        """What makes the run's figures meaningless; a command exits non-zero when there is any."""
        if self.runtime.round and not self.totals["comparisons"]:
            return [f"no agent voted in any of the {self.runtime.round} rounds: nothing was learned "
                    f"or measured (see the agents' output)"]
        return []

    def _absent_rounds(self) -> Counter:
        """Per agent id, the rounds of the whole run (every process of a resumed one) it was
        absent from, counted from metrics.jsonl (a line from before the field counts none)."""
        return Counter(block for record in self.folder.metrics() for block in record.get("absent", []))

    def finish(self) -> dict:
        """Write summary.json from the counters and the agents' reports; return it (after every
        round's record is written; what failed in one is raised here)."""
        try:
            self.recorder.wait()
        finally:
            self.recorder.close()
        config, d, K = self.config, self.store.d, self.config.agents
        per_agent, totals = [], {"bytes_up": 0, "bytes_down": 0, "payload_bits_up": 0,
                                 "payload_bits_down": 0, "wire_bytes_up": 0, "wire_bytes_down": 0}
        agent_bytes = self.agent_bytes()
        absent_rounds = self._absent_rounds()
        for (block, counters), slot in zip(self.link_counters(), self.runtime.slots):
            up, down = agent_bytes[str(block)]["up"], agent_bytes[str(block)]["down"]
            report = slot.report or {}
            per_agent.append({
                "id": block, "bytes_up": up["frame_bytes"], "bytes_down": down["frame_bytes"],
                "payload_bits_up": up["payload_bits"], "payload_bits_down": down["payload_bits"],
                "peak_rss_bytes": report.get("peak_rss"), "floor_rss_bytes": report.get("floor_rss"),
                "learning_state_bytes": report.get("learning_state"),
                "env_steps": report.get("env_steps"), "episodes": report.get("episodes"),
                "joins": slot.joins, "syncs": slot.syncs, "catch_ups": slot.catch_ups, "discarded_votes": slot.discarded_votes,
                "absent_rounds": absent_rounds[block],
                "rejected_frames": counters.rejected_total, **transport_figures(slot.links, counters)})
            for name, stats in (("up", up), ("down", down)):
                totals[f"bytes_{name}"] += stats["frame_bytes"]
                totals[f"payload_bits_{name}"] += stats["payload_bits"]
                totals[f"wire_bytes_{name}"] += stats["wire_bytes"]
        rounds_run = max(1, self.runtime.round)
        reports = [s.report for s in self.runtime.slots if s.report]
        summary = {
            "algo": config.algo, "task": config.task, "agents": K, "blocks": config.block_count, "rounds": self.runtime.round,
            "d": d, "seed": config.seed, "panel_scale": _panel_scale(config),
            "alpha_lsb": self.runtime.alpha_steps, "mu_lsb": self.store.fmt.steps(config.mu),
            "frac_bits": self.store.fmt.frac_bits,
            "episodes": self.totals["episodes"], "comparisons": self.totals["comparisons"],
            # From the agents' reports: an agent that left or lost its link before the end
            # sent none, and these count only the agents that did (`agents_reported`).
            "env_steps": sum(r["env_steps"] for r in reports),
            "reviewer_votes": sum(r["reviewer_votes"] for r in reports),
            "agents_reported": len(reports),
            "preference": config.preference, "comparison": config.comparison,
            **self.evaluation_summary(),
            **totals,
            "bytes_per_agent_per_round_up": totals["bytes_up"] / K / rounds_run,
            "bytes_per_agent_per_round_down": totals["bytes_down"] / K / rounds_run,
            "paper_bits_per_update": d + config.block_count,
            "fedavg_float32_bytes_per_agent_per_round": 4 * d,
            "saturated": self.totals["saturated"],
            "coordinator_rejected": dict(self.runtime.rejected),
            "wall_seconds": round(self.totals["wall_seconds"], 2),
            "theta_hash": self.store.digest().hex(),
            "per_agent": per_agent,
            "errors": self._errors(),
        }
        self.folder.write_json(SUMMARY, summary)
        if self.plots:
            from fedzo.coordinator.analysis.report import plot_run
            plot_run(self.folder.path)      # PNGs of the return curves; none without matplotlib
        return summary
