"""Hypothesis strategies and helpers shared by the protocol tests (no tests here)."""
from hypothesis import strategies as st

from fedzo.edge.protocol import (
    AGENT,
    COORDINATOR,
    Bye,
    Capabilities,
    Challenge,
    Error,
    Hello,
    Join,
    ModelDownload,
    ModelUpload,
    Refusal,
    Report,
    RoundResult,
    RoundResultNext,
    RoundStart,
    Session,
    Sync,
    Vote,
    Welcome,
    config_json,
)
from fedzo.edge.protocol.constants import (
    MAX_AGENTS,
    MAX_FRAME_BYTES,
    MAX_ROUND,
    MIN_PEER_MAX_FRAME,
)

RUN_KEY = b"fedzo-test-run-key-0123456789abc"

hashes = st.binary(min_size=8, max_size=8)
nonces = st.binary(min_size=16, max_size=16)
rounds = st.integers(0, MAX_ROUND)
u32 = st.integers(0, 2**32 - 1)

capabilities = st.builds(
    Capabilities, backend=st.sampled_from(["c", "numpy"]), store_bits=st.sampled_from([16, 32]),
    memory_budget=st.integers(0, 2**64 - 1), max_frame=st.integers(MIN_PEER_MAX_FRAME, MAX_FRAME_BYTES))

shares = st.binary(min_size=32, max_size=32)
joins = st.builds(
    lambda agent_id, caps, state, share, proof: Join(agent_id, caps, state[0], state[1], share, proof),
    u32, capabilities, st.one_of(st.tuples(st.none(), st.none()), st.tuples(rounds, hashes)), shares, nonces)
hellos = st.builds(Hello, nonces, st.one_of(st.none(), st.integers(0, 2**32 - 2)))   # an id: an agent key's

json_values = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63),
                        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
configs = st.dictionaries(st.text(max_size=12), st.one_of(json_values, st.lists(json_values, max_size=4)),
                          max_size=8).map(config_json)

welcomes = st.integers(1, MAX_AGENTS).flatmap(lambda k: st.builds(
    Welcome, agent_id=st.integers(0, 2**32 - 2), block=st.integers(0, k - 1), n_agents=st.just(k),
    d=u32, seed=st.integers(0, 2**64 - 1), round=rounds, theta_hash=hashes, config_json=configs,
    key_share=shares))

challenges = st.builds(Challenge, nonces, u32,
                       st.one_of(st.just(""), configs.filter(lambda c: len(c.encode()) <= 255)))
refusals = st.builds(Refusal, st.integers(0, 0xFFFF), nonces)
round_starts = st.builds(RoundStart, rounds)
votes = st.builds(Vote, rounds, st.sampled_from([-1, 0, 1]), hashes)
round_results = st.builds(RoundResult, rounds,
                          st.lists(st.sampled_from([-1, 0, 1]), min_size=1, max_size=300).map(tuple),
                          hashes)
round_results_next = st.builds(RoundResultNext, st.integers(0, 2**32 - 3),
                               st.lists(st.sampled_from([-1, 0, 1]), min_size=1, max_size=300).map(tuple),
                               hashes)


@st.composite
def _chunk_fields(draw, itemsize):
    n = draw(st.integers(0, 300))
    if n == 0:
        return 0, 0, b""
    offset = draw(st.integers(0, 2**32 - 1 - n))
    total = draw(st.integers(offset + n, 2**32 - 1))
    return total, offset, draw(st.binary(min_size=n * itemsize, max_size=n * itemsize))


@st.composite
def syncs(draw):
    dtype = draw(st.sampled_from(["int16", "int32"]))
    bits = 16 if dtype == "int16" else 32
    total, offset, data = draw(_chunk_fields(bits // 8))
    return Sync(draw(rounds), total, offset, dtype, draw(st.integers(0, bits - 1)), draw(hashes), data)


@st.composite
def model_chunks(draw, cls):
    total, offset, data = draw(_chunk_fields(4))
    return cls(draw(rounds), total, offset, data)


short_texts = st.text(max_size=90).filter(lambda s: len(s.encode("utf-8")) <= 255)
errors = st.builds(Error, st.integers(0, 0xFFFF), short_texts)
byes = st.builds(Bye, st.integers(0, 0xFFFF), short_texts)
u64s = st.integers(0, 2**64 - 1)
reports = st.builds(Report, rounds, *([u64s] * len(Report.COUNTS)))

AGENT_MESSAGES = st.one_of(votes, model_chunks(ModelUpload), errors, reports)
COORDINATOR_MESSAGES = st.one_of(round_starts, round_results, syncs(), model_chunks(ModelDownload),
                                 errors)
ALL_MESSAGES = st.one_of(hellos, challenges, refusals, joins, welcomes, round_starts, votes, round_results,
                         round_results_next, syncs(),
                         model_chunks(ModelUpload), model_chunks(ModelDownload), errors, byes,
                         reports)


def handshake(agent, coord, agent_id=1, agent_nonce=b"A" * 16, challenge=b"C" * 16, join=None):
    """Run Hello, Challenge, Join, Welcome between two Sessions; returns the Join the coordinator opened."""
    coord.open(agent.seal(Hello(agent_nonce)))
    agent.open(coord.seal(Challenge(challenge)))
    opened = coord.open(agent.seal(join or Join(agent_id)))
    agent.open(coord.seal(Welcome(agent_id, 0, 2, 100, 7, 0, bytes(8), "{}")))
    return opened


def established_pair(key=RUN_KEY, agent_nonce=b"A" * 16, challenge=b"C" * 16, **coord_kwargs):
    """An agent and a coordinator Session after a completed handshake."""
    agent = Session(AGENT, key)
    coord = Session(COORDINATOR, key, **coord_kwargs)
    handshake(agent, coord, agent_nonce=agent_nonce, challenge=challenge)
    assert agent.established and coord.established
    return agent, coord
