"""The coordinator's protocol state machine: link events in, (link, message) out.

It runs the rounds of DESIGN.md §2 over K agent slots (slot k = block k) and knows
nothing of transports: a link is any object with `.name` and `.counters` (its
LinkCounters), and the transport calls

    received(link, msg)   a message arrived on a link
    disconnected(link)    the link is gone
    tick(now)             time passed (join quorum, round deadline, end of run)

each returning a list of (link, message) to send. A message of None means
"close this link" (after what was queued before it). Once it has sent them,
the transport calls `after_dispatch()`: that is when `on_round_closed` runs
for a round that closed, so the round's metrics include the RoundResults
(and FedAvg downloads) its close produced.

Round t: RoundStart to every connected agent; each answers one Vote (FedAvg:
its model chunks, then the Vote). The round closes when every present agent
that was sent the RoundStart has voted, or at the deadline; a missing vote is
0. Every replica then applies the K votes (FedAvg: takes the average), and the
RoundResult carries the votes and the hash of the coordinator's new theta.
When round t + 1 starts at once (the usual case), an agent gets one
RoundResultNext instead of a RoundResult and a RoundStart (protocol 4): one
frame down per steady round. A RoundStart alone still starts the first round
after the joins, and an open round for an agent that joins during it.

Cost (issue 13): a message costs O(1) (a link-to-slot map; the slots a round
waits for are kept as sets updated on every change of a slot, not found by a
scan), a round O(n): one result object per round, its body encoded once and
shared by every agent (each link still seals it under its own session key).
A slot is an agent's seat, indexed by agent id (`slot.agent_id`);
the block it evaluates in a round is the round plan's (edge/learning/fleet.py).

Absent agents: an agent that was sent a round's RoundStart and said nothing
at all until that round closed is absent from then on, until any message
from it (a vote, late or not, a report, an error) or a new join makes it
present again. Absent agents are still sent every RoundStart and
RoundResult, and a vote of theirs counts if it arrives while its round is
open, but no round waits for them (their vote is 0 at the close). A round
whose agents are all absent waits for them as before, until the deadline,
so a run whose every agent hangs does not race through its rounds.

A vote whose theta hash differs from the coordinator's theta_t is discarded
(counted as 0) and that agent is sent a Sync; so is an agent that reports
divergence (Error DIVERGED) or rejoins holding another theta.

Joins and slots (docs/SECURITY.md): a Hello is answered with a Challenge and
nothing else (it carries d and the run's terms, so that an agent can decline
before it takes a slot: an Error or Bye from a link without a slot is such a
decline, logged and counted in rejected["declined"], and that link closed); only a Join that verified against that Challenge (the Session
checks it) reaches `_on_join`, so no Welcome or theta goes to anyone who has
not proved the run key in this handshake. One slot per link and one link per
slot: a Hello (a new session) on a link that holds a slot frees that slot
first. A Join for an agent id whose slot is held by another live link takes
it over (the old link gets Bye REPLACED and is closed) only if the Join
proves the rejoin secret of the session that holds the slot
(Join.rejoin_proven), or if that link has sent nothing for
`takeover_silence` seconds (default: the round timeout); otherwise it is
refused with Error ID_IN_USE, counted in rejected["id_in_use"].
"""
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from fedzo.edge.learning.algorithm import (
    apply_par_update,
    average_models,
    check_model,
    starts_from_packaged_actor,
)
from fedzo.edge.learning.fleet import block_votes, round_plan
from fedzo.edge.protocol import (
    ASSIGN_AGENT_ID,
    MAX_FRAME_BYTES,
    MAX_TEXT_BYTES,
    Bye,
    ByeReason,
    Challenge,
    Error,
    ErrorCode,
    Hello,
    Join,
    ModelDownload,
    ModelUpload,
    Report,
    RoundResult,
    RoundResultNext,
    RoundStart,
    VectorAssembler,
    Vote,
    Welcome,
    config_json,
    model_chunks,
    sync_chunks,
)
from fedzo.edge.protocol.constants import MAX_ROUND

CLOSE = None   # the message that tells the transport to close a link
RECENT_ROUNDS = 64   # Par-S2ZPO rounds whose results are kept to catch a rejoining agent up


@dataclass(eq=False)            # slots are compared and hashed by identity (they live in sets)
class AgentSlot:
    """Agent k's seat in the run, whoever is connected to it."""

    agent_id: int   # k: its block too, unless the run is a fleet (blocks follow each round's plan)
    link: object = None
    in_round: bool = False          # was sent this round's RoundStart
    vote: int = None                # this round's vote, once received
    abstained: bool = False         # its vote this round was 0: it did no rollouts (asleep, away)
    model: np.ndarray = None        # FedAvg: this round's uploaded model
    assembler: VectorAssembler = None
    report: dict = None
    links: list = field(default_factory=list)   # every link this slot has used
    joins: int = 0
    last_heard: float = 0.0         # clock() of the last message from the current link
    discarded_votes: int = 0
    syncs: int = 0
    catch_ups: int = 0              # rejoins brought up to date by the missed rounds' results, not a Sync
    synced: tuple = None            # (link, round) of the last Sync sent: at most one per round per link
    max_frame: int = MAX_FRAME_BYTES  # the largest frame its agent accepts (Join capabilities)
    spoke: bool = False             # a message came from its agent since this round's RoundStart
    absent: bool = False            # silent through a whole round: rounds do not wait for it


class CoordinatorRuntime:
    """Rounds over K agent slots; see the module docstring."""

    # The bookkeeping below keeps, for the open round, the slots sent its start that are
    # still linked: those not absent (`_sent_present`), and among the not-yet-voted the
    # present (`_unvoted_present`) and the absent (`_unvoted_absent`) ones. `_track(slot)`
    # re-files one slot after any change of its link, in_round, absent or vote.

    def __init__(self, config, store, welcome_config: dict, *, start_round=0, round_timeout=120.0,
                 join_timeout=None, quorum=None, report_timeout=10.0, on_round_closed=None, on_link_added=None,
                 takeover_silence=None, hold_finish=None, log=print, clock=time.monotonic):
        self.config, self.store = config, store
        self.welcome_json = config_json(welcome_config)
        # What a Challenge tells a joiner about the run (its memory check needs no more).
        terms = {"task": config.task, "algo": config.algo, "agents": config.agents, "dtype": store.fmt.dtype.name}
        if config.block_count != config.agents:
            terms["blocks"] = config.block_count      # a fleet: the joiner's block size follows K, not n
        self.terms_json = config_json(terms)
        self.slots = [AgentSlot(k) for k in range(config.agents)]
        self._slot_by_link = {}         # link -> the slot it holds
        self._sent_present, self._unvoted_present, self._unvoted_absent = set(), set(), set()
        self._unreported = set()        # linked slots whose Report has not come
        self._next_fresh = 0            # no slot below this index is fresh (never joined, free)
        self.round = start_round
        self.round_timeout, self.join_timeout = round_timeout, join_timeout
        self.quorum = config.agents if quorum is None else quorum
        self.report_timeout = report_timeout
        # A Join without the holder's rejoin secret takes a live slot only after this much silence.
        self.takeover_silence = round_timeout if takeover_silence is None else takeover_silence
        self.on_round_closed = on_round_closed or (lambda info: None)
        # Called once for each link a slot gains (its agent joined over it): the owner's
        # byte accounting follows the link from then on.
        self.on_link_added = on_link_added or (lambda slot, link: None)
        # True while the run must not end yet: its rounds' records are still being written
        # (coordinator/run/recorder.py); the final Bye waits, so agents stay for a --resume.
        self.hold_finish = hold_finish or (lambda: False)
        self._closed = []               # rounds closed since the last after_dispatch()
        self.log, self.clock = log, clock
        self.phase = "joining"
        self.started = False            # a round has been started by this process
        self.started_at = clock()
        self.deadline = None
        self.alpha_steps = store.fmt.steps(config.alpha)
        self.round_digest = store.digest()
        # round t -> (theta_t's hash, its K votes, theta_{t+1}'s hash): a few bytes a round.
        self.recent = OrderedDict()
        self.rejected = {"unknown_agent": 0, "run_full": 0, "stale_vote": 0, "unexpected": 0,
                         "id_in_use": 0, "declined": 0}

    # ---- queries ----

    @property
    def done(self) -> bool:
        return self.phase == "done"

    def connected(self) -> list:
        """The slots with a link, in slot order (O(n): not for a per-message path)."""
        return [s for s in self.slots if s.link is not None]

    def plan(self, round_=None):
        """Round t's plan: which agent evaluates which block (edge/learning/fleet.py)."""
        c = self.config
        return round_plan(c.seed, self.round if round_ is None else round_, c.agents, c.block_count, c.per_round)

    def asked(self, slot) -> bool:
        """Is the agent in `slot` asked to vote in the current round?"""
        return self.plan().asked(slot.agent_id)

    @property
    def connected_count(self) -> int:
        """How many slots have a link."""
        return len(self._slot_by_link)

    @property
    def free_slots(self) -> int:
        """How many slots have no link (seats a new connection may still take)."""
        return len(self.slots) - len(self._slot_by_link)

    def slot_of(self, link):
        """The slot a link is joined to, or None (a link that has not joined)."""
        return self._slot_by_link.get(link)

    # ---- bookkeeping (see the class docstring) ----

    def _set_link(self, slot, link) -> None:
        """Seat `link` in `slot` (None: the slot is free); keeps the link map."""
        if slot.link is not None and self._slot_by_link.get(slot.link) is slot:
            del self._slot_by_link[slot.link]
        slot.link = link
        if link is not None:
            self._slot_by_link[link] = slot

    def _track(self, slot) -> None:
        """File `slot` again after a change of its link, in_round, absent, vote or report."""
        for group in (self._sent_present, self._unvoted_present, self._unvoted_absent, self._unreported):
            group.discard(slot)
        if slot.link is None:
            return
        if slot.report is None:
            self._unreported.add(slot)
        if not slot.in_round:
            return
        if not slot.absent:
            self._sent_present.add(slot)
        if slot.vote is None:
            (self._unvoted_absent if slot.absent else self._unvoted_present).add(slot)

    # ---- transport events ----

    def received(self, link, msg) -> list:
        """Handle one message from a link."""
        if isinstance(msg, Hello):
            # A new session on this link: whatever slot its old session held is free.
            return self._release(link) + [(link, Challenge(d=self.store.d, terms_json=self.terms_json))]
        if isinstance(msg, Join):
            return self._on_join(link, msg)
        slot = self.slot_of(link)
        if slot is None and isinstance(msg, (Error, Bye)):
            # An agent that read the Challenge's terms and cannot take part (its memory budget).
            self.rejected["declined"] += 1
            self.log(f"coordinator: {link.name} declined to join ({msg.text or msg.code})")
            return [(link, CLOSE)]
        if slot is None:
            self.rejected["unexpected"] += 1
            return [(link, Error(ErrorCode.BAD_MESSAGE, f"{msg.NAME} before join")), (link, CLOSE)]
        self._heard(slot)
        if isinstance(msg, Vote):
            return self._on_vote(slot, msg)
        if isinstance(msg, ModelUpload):
            return self._on_upload(slot, msg)
        if isinstance(msg, Report):
            slot.report = msg.as_dict()
            self._track(slot)
            return self._maybe_finish()
        if isinstance(msg, Error):
            if msg.code == ErrorCode.DIVERGED:
                self.log(f"coordinator: agent {slot.agent_id} diverged ({msg.text}); syncing")
                return self._sync(slot)
            self.log(f"coordinator: agent {slot.agent_id} error {msg.code}: {msg.text}")
            return []
        if isinstance(msg, Bye):
            self.log(f"coordinator: agent {slot.agent_id} left ({msg.text or msg.code})")
            return self.disconnected(link) + [(link, CLOSE)]
        self.rejected["unexpected"] += 1
        return [(link, Error(ErrorCode.BAD_MESSAGE, f"coordinator does not expect {msg.NAME}"))]

    def disconnected(self, link) -> list:
        """A link closed: its slot is free for a rejoin; the round may now be complete."""
        return self._release(link, "disconnected")

    def _release(self, link, why="started a new session") -> list:
        """Free the slot `link` holds, if any; the round may now be complete."""
        slot = self.slot_of(link)
        if slot is None:
            return []
        self._set_link(slot, None)
        slot.in_round, slot.absent = False, False
        self._track(slot)
        self.log(f"coordinator: agent {slot.agent_id} {why}")
        if self.phase == "round":
            return self._maybe_close_round()
        if self.phase == "finishing":
            return self._maybe_finish()
        return []

    def revoke(self, agent_ids) -> list:
        """End the sessions of the agents in `agent_ids`, whose keys were revoked or replaced
        (coordinator/keys/reload.py): Bye EXCLUDED, the link closed, the slot freed."""
        out = []
        for slot in self.connected():
            if slot.agent_id in agent_ids:
                link = slot.link
                self.rejected["revoked"] = self.rejected.get("revoked", 0) + 1
                out += [(link, Bye(ByeReason.EXCLUDED, f"agent {slot.agent_id}'s key was revoked or replaced")),
                        (link, CLOSE)]
                out += self._release(link, "disconnected: its key was revoked or replaced")
        return out

    def tick(self, now=None) -> list:
        """Deadlines: start on quorum after the join timeout, close late rounds, end the run."""
        now = self.clock() if now is None else now
        if self.phase == "joining" and self.join_timeout is not None:
            if now - self.started_at >= self.join_timeout and self.connected_count >= self.quorum:
                self.log(f"coordinator: join timeout, starting with {self.connected_count} agents")
                return self._start_round()
        if self.phase == "round" and now >= self.deadline:
            late = sorted(s.agent_id for s in self._waiting_for())
            self.log(f"coordinator: round {self.round} timed out; no vote from {late}")
            return self._close_round()
        if self.phase == "finishing" and (now >= self.deadline or self._reported()) and not self.hold_finish():
            return self._finish()
        return []

    # ---- joining ----

    def _on_join(self, link, msg: Join) -> list:
        out = self._release(link)          # one slot per link (the Hello freed it already)
        slot = self._choose_slot(msg.agent_id)
        if slot is None:
            reason = "unknown_agent" if msg.agent_id != ASSIGN_AGENT_ID else "run_full"
            self.rejected[reason] += 1
            code = ErrorCode.UNKNOWN_AGENT if reason == "unknown_agent" else ErrorCode.RUN_FULL
            text = (f"agent id {msg.agent_id} is not in this run (0..{len(self.slots) - 1})"
                    if reason == "unknown_agent" else "every block already has an agent")
            self.log(f"coordinator: refused a join: {text}")
            return out + [(link, Error(code, text)), (link, CLOSE)]
        now = self.clock()
        if slot.link is not None:
            silent = now - slot.last_heard
            if not msg.rejoin_proven and silent < self.takeover_silence:
                self.rejected["id_in_use"] += 1
                text = (f"agent id {slot.agent_id} is held by a live session (heard {silent:.0f} s ago); "
                        f"a join without that session's secret may take it after "
                        f"{self.takeover_silence:.0f} s of silence")
                self.log(f"coordinator: refused a join: {text}")
                return out + [(link, Error(ErrorCode.ID_IN_USE, text[:MAX_TEXT_BYTES])), (link, CLOSE)]
            why = "its own newer session" if msg.rejoin_proven else f"a join after {silent:.0f} s of silence"
            self.log(f"coordinator: agent {slot.agent_id} replaced by {why}")
            out += [(slot.link, Bye(ByeReason.REPLACED, "a newer session took this agent id")),
                    (slot.link, CLOSE)]
        self._set_link(slot, link)
        slot.joins, slot.last_heard = slot.joins + 1, now
        slot.spoke, slot.absent = True, False      # a join is its agent speaking
        slot.max_frame = msg.capabilities.max_frame
        if link not in slot.links:
            slot.links.append(link)
            self.on_link_added(slot, link)
        slot.assembler = VectorAssembler(expected_total=self.store.d)
        out.append((link, Welcome(slot.agent_id, slot.agent_id, len(self.slots), self.store.d, self.config.seed,
                                  self.round, self.store.digest(), self.welcome_json)))
        holds_current = msg.round == self.round and msg.theta_hash == self.store.digest()
        fresh = msg.round is None          # the agent holds no theta yet
        if not holds_current and not starts_from_packaged_actor(fresh, self.round, self.config):
            out += self._catch_up(slot, msg) or self._sync(slot)
        if self.phase == "round" and slot.vote is None and self.asked(slot):
            # Joining an open round: it holds theta_t now, so it can still vote.
            slot.in_round = True
            out.append((link, RoundStart(self.round)))
        self._track(slot)
        self.log(f"coordinator: agent {slot.agent_id} joined ({self.connected_count}/{len(self.slots)})")
        # Before the first round, wait for all K (or the quorum at the join
        # timeout); once running, one agent is enough to go on.
        if self.phase == "joining" and (self.connected_count == len(self.slots) or self.started):
            out += self._start_round()
        return out

    def _choose_slot(self, agent_id):
        if agent_id == ASSIGN_AGENT_ID:
            # A fresh agent takes the first slot that has never had one, then any free one.
            # Slots only stop being fresh, so the search for a fresh one resumes where the
            # last one ended (O(1) per join amortised); the scan for any free slot runs only
            # once no fresh slot is left.
            while self._next_fresh < len(self.slots):
                slot = self.slots[self._next_fresh]
                if slot.link is None and slot.joins == 0:
                    return slot
                self._next_fresh += 1
            return next((s for s in self.slots if s.link is None), None)
        return self.slots[agent_id] if agent_id < len(self.slots) else None

    def _sync(self, slot) -> list:
        if slot.synced == (slot.link, self.round):
            # Already sent this round on this link (an agent repeating Error
            # DIVERGED would otherwise queue a whole theta each time).
            self.rejected["repeated_sync"] = self.rejected.get("repeated_sync", 0) + 1
            return []
        slot.synced = (slot.link, self.round)
        slot.syncs += 1
        chunks = sync_chunks(self.round, self.store.values, self.store.fmt.frac_bits, max_frame=slot.max_frame)
        return [(slot.link, chunk) for chunk in chunks]

    def _catch_up(self, slot, msg: Join) -> list:
        """The RoundResults of the rounds a rejoining agent missed, if it holds theta of one
        of the recent rounds and they cost fewer bytes than a Sync; else [] (send a Sync)."""
        if msg.round is None or not msg.round < self.round or msg.round not in self.recent:
            return []
        if self.recent[msg.round][0] != msg.theta_hash:
            return []
        results = [RoundResult(t, self.recent[t][1], self.recent[t][2]) for t in range(msg.round, self.round)]
        sync_bytes = self.store.values.nbytes
        if sum(len(r.encode_body()) for r in results) >= sync_bytes:
            return []
        slot.catch_ups += 1
        self.log(f"coordinator: agent {slot.agent_id} catches up from round {msg.round} "
                 f"({len(results)} round results instead of a Sync)")
        return [(slot.link, r) for r in results]

    # ---- rounds ----

    def _start_round(self, results=None) -> list:
        """Open round self.round for every linked slot. results: (plain, next) result
        messages of the round just closed: a slot gets `next` (the result that also starts
        this round) in place of a RoundStart; None = the first round after joins."""
        if self.round >= self.config.rounds:
            return self._finish_results(results) + self._begin_finish()
        if not self._slot_by_link:
            # Nobody to vote: pause until an agent (re)joins rather than run empty rounds.
            self.phase = "joining"
            self.log(f"coordinator: no agent connected; round {self.round} waits for a join")
            return self._finish_results(results)
        self.phase, self.started = "round", True
        self.deadline = self.clock() + self.round_timeout
        self.round_digest = self.store.digest()
        self._sent_present.clear()
        self._unvoted_present.clear()
        self._unvoted_absent.clear()
        start = RoundStart(self.round)
        out = []
        plan = self.plan()
        for slot in self.slots:
            # An agent the round's plan does not ask sits it out (it still gets the result).
            slot.vote, slot.model, slot.abstained = None, None, False
            slot.in_round = slot.link is not None and plan.asked(slot.agent_id)
            slot.spoke = False
            if slot.link is not None:
                self._track(slot)
                if results is not None and slot.in_round and results.next is not None:
                    out += results[slot]
                    out[-1] = (slot.link, results.next)
                else:
                    # Not asked this round (it still gets the result), or no result to merge with.
                    out += results[slot] if results is not None else []
                    if slot.in_round:
                        out.append((slot.link, start))
        return out + self._maybe_close_round()

    def _finish_results(self, results) -> list:
        """The closed round's results, each with no next round (the run ends, or nobody is left)."""
        if results is None:
            return []
        out = []
        for slot in results.slots:
            out += results[slot]
        return out

    def _on_vote(self, slot, msg: Vote) -> list:
        out = self._vote(slot, msg)
        self._track(slot)
        return out + self._maybe_close_round() if self.phase == "round" and slot.vote is not None else out

    def _vote(self, slot, msg: Vote) -> list:
        """Take a vote into `slot` (or refuse it); the caller files the slot again."""
        if self.phase != "round" or msg.round != self.round or slot.vote is not None or not slot.in_round:
            self.rejected["stale_vote"] += 1
            return [(slot.link, Error(ErrorCode.STALE_ROUND,
                                      f"vote for round {msg.round} not accepted (round {self.round})"))]
        if msg.theta_hash != self.round_digest:
            slot.vote, slot.model = 0, None
            slot.discarded_votes += 1
            self.log(f"coordinator: agent {slot.agent_id} voted on another theta; vote discarded, syncing")
            return self._sync(slot)
        slot.vote, slot.abstained = msg.vote, msg.vote == 0
        return []

    def _on_upload(self, slot, msg: ModelUpload) -> list:
        if self.phase != "round" or msg.round != self.round:
            self.rejected["stale_vote"] += 1
            return []
        model = slot.assembler.add(msg)
        if model is not None:
            # Checked before it counts; a bad model is refused at the boundary
            # (coordinator/rounds/boundary.py): Error, count, link closed.
            slot.model = check_model(model, self.store.fmt, self.store.d)
        return []

    def _heard(self, slot) -> None:
        """A message from the agent in `slot`: it is present, whatever it said."""
        slot.last_heard, slot.spoke = self.clock(), True
        if slot.absent:
            slot.absent = False
            self._track(slot)
            self.log(f"coordinator: agent {slot.agent_id} spoke again; rounds wait for its vote again")

    def _waiting_for(self) -> set:
        """The slots the open round still waits for: those sent its RoundStart that have not
        voted, absent ones left out unless every slot sent the RoundStart is absent."""
        return self._unvoted_present if self._sent_present else self._unvoted_absent

    def _maybe_close_round(self) -> list:
        if self.phase != "round" or self._waiting_for():
            return []
        return self._close_round()

    def _mark_absent(self) -> None:
        """At a round's close: an agent sent its RoundStart that has said nothing since is absent."""
        for slot in self.slots:
            if slot.in_round and slot.link is not None and not slot.spoke and not slot.absent:
                slot.absent = True
                self._track(slot)
                self.log(f"coordinator: agent {slot.agent_id} said nothing in round {self.round}; "
                         f"later rounds will not wait for it until it speaks")

    def _close_round(self) -> list:
        agent_votes = {s.agent_id: s.vote for s in self.slots if s.vote is not None}
        abstained = sum(1 for s in self.slots if s.abstained)
        voters = len(agent_votes) - abstained      # those that spent the round's trajectories
        # One vote per block: the majority of its agents' (its one agent's when n = K); none: 0.
        votes = block_votes(self.plan(), agent_votes, self.config.block_count)
        absent = [s.agent_id for s in self.slots if s.absent and s.link is not None]
        if self.config.algo == "fedavg-s2zpo":
            models = [s.model if s.vote is not None else None for s in self.slots]
            average = average_models(models) if any(m is not None for m in models) else self.store.to_float()
            saturated = self.store.set_from_float(average)
        else:
            saturated = apply_par_update(self.store, self.config.seed, self.config.block_count, self.round,
                                         votes, self.alpha_steps, self.config.perturbation)
        digest = self.store.digest()
        if self.config.algo == "par-s2zpo":
            self.recent[self.round] = (self.round_digest, tuple(votes), digest)
            while len(self.recent) > RECENT_ROUNDS:
                self.recent.popitem(last=False)
        results = _Results(self.round, tuple(votes), digest,
                           average if self.config.algo == "fedavg-s2zpo" else None)
        for slot in self.slots:
            if slot.link is not None:
                results.add(slot)
        # theta after this round, kept for the callback: the next round may
        # already be under way when the transport calls after_dispatch().
        self._closed.append({"round": self.round, "votes": votes, "voters": voters, "absent": absent,
                             "agent_votes": agent_votes, "abstained": abstained,
                             "saturated": saturated, "theta_hash": digest.hex(),
                             "theta": self.store.values.copy()})
        self._mark_absent()
        self.round += 1
        return self._start_round(results)

    def after_dispatch(self) -> None:
        """Run on_round_closed for the rounds that closed, now that their results are sent."""
        closed, self._closed = self._closed, []
        for info in closed:
            self.on_round_closed(info)

    # ---- the end ----

    def _begin_finish(self) -> list:
        # Agents send their Report after the last RoundResult; wait for them
        # (up to report_timeout) and for hold_finish to lift, then say Bye.
        self.phase = "finishing"
        self.deadline = self.clock() + self.report_timeout
        return self._maybe_finish()

    def _reported(self) -> bool:
        return not self._unreported

    def _maybe_finish(self) -> list:
        if self.phase == "finishing" and self._reported() and not self.hold_finish():
            return self._finish()
        return []

    def _finish(self) -> list:
        self.phase = "done"
        out = []
        for slot in self.connected():
            out += [(slot.link, Bye(ByeReason.DONE, "run finished")), (slot.link, CLOSE)]
        return out


class _Results:
    """A closed round's messages to its agents, made once per round and shared.

    One RoundResult and one RoundResultNext object serve every agent (each encodes its
    body once); FedAvg's download chunks are cut once per frame limit. results[slot] is
    what `slot` gets ending in the plain RoundResult; `next` replaces that last message
    for a slot that goes straight into the next round."""

    def __init__(self, round_, votes, digest, average=None):
        self.round, self.average = round_, average
        self.plain = RoundResult(round_, votes, digest)
        self.next = RoundResultNext(round_, votes, digest) if round_ < MAX_ROUND else None
        self.slots = []               # the slots the result goes to, in slot order
        self._chunks = {}             # max_frame -> FedAvg download chunks

    def add(self, slot) -> None:
        self.slots.append(slot)

    def __getitem__(self, slot) -> list:
        out = []
        if self.average is not None:
            chunks = self._chunks.get(slot.max_frame)
            if chunks is None:
                chunks = self._chunks[slot.max_frame] = model_chunks(ModelDownload, self.round, self.average,
                                                                     max_frame=slot.max_frame)
            out += [(slot.link, c) for c in chunks]
        out.append((slot.link, self.plain))
        return out
