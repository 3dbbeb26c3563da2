"""The agent's announced max_frame bounds every Sync and ModelDownload chunk (issue 12, item 6)."""
from small_runs import Harness

from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.protocol import Capabilities, Join, ModelDownload, Sync
from fedzo.edge.protocol.constants import MIN_PEER_MAX_FRAME
from fedzo.edge.protocol.header import frame_size

SMALL = MIN_PEER_MAX_FRAME


class SmallFrames(AgentRuntime):
    """An agent that accepts frames of at most SMALL bytes."""

    def join(self) -> Join:
        join = super().join()
        caps = join.capabilities
        return Join(join.agent_id, Capabilities(caps.backend, caps.store_bits, caps.memory_budget, SMALL),
                    join.round, join.theta_hash)


def frames_to(h, i, kind):
    """Frame sizes of the `kind` messages sent to agent i."""
    link = h.links[i]
    return [frame_size(len(msg.encode_body())) for to, msg in h.sent if to is link and isinstance(msg, kind)]


def recording(h):
    h.sent = []
    dispatch = h.dispatch

    def record(outputs):
        h.sent += [o for o in outputs if o[1] is not None]
        dispatch(outputs)
    h.dispatch = record


def test_model_downloads_fit_the_agents_max_frame(tmp_path):
    h = Harness(tmp_path, algo="fedavg-s2zpo", agents=2, rounds=1)
    recording(h)
    h.connect(SmallFrames(log=lambda *a: None))
    h.connect(AgentRuntime(log=lambda *a: None))
    while not h.runtime.done:
        h.step_all()
    small, full = frames_to(h, 0, ModelDownload), frames_to(h, 1, ModelDownload)
    assert max(small) <= SMALL < max(full)          # before: 16 KiB chunks to both
    assert len(small) > len(full)


def test_a_sync_fits_the_agents_max_frame(tmp_path):
    h = Harness(tmp_path, agents=1)
    recording(h)
    h.connect(SmallFrames(log=lambda *a: None))
    slot = h.runtime.slots[0]
    h.dispatch(h.runtime._sync(slot))
    sizes = frames_to(h, 0, Sync)
    assert len(sizes) > 1 and max(sizes) <= SMALL
    h.step_agent(0)                                 # the agent takes the chunks and goes on
    assert not h.links[0].closed and h.runtime.round == 1 and h.runtime.slots[0].discarded_votes == 0
