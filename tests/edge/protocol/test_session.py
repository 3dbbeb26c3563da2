"""Session: handshake, seal/open, authentication, anti-replay, rejection counting."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_strategies import (
    AGENT_MESSAGES,
    COORDINATOR_MESSAGES,
    RUN_KEY,
    established_pair,
)

from fedzo.edge.protocol import (
    AGENT,
    COORDINATOR,
    BadTag,
    Bye,
    Error,
    Join,
    MalformedFrame,
    NonceRegistry,
    OversizedFrame,
    ProtocolError,
    ReplayedFrame,
    RoundResult,
    RoundStart,
    Session,
    SessionClosed,
    StaleRound,
    State,
    TruncatedFrame,
    UnexpectedMessage,
    UnknownType,
    Vote,
    Welcome,
    WrongVersion,
    peek_header,
)
from fedzo.edge.protocol.constants import (
    FLAG_HANDSHAKE,
    HEADER_BYTES,
    MAX_FRAME_BYTES,
    MAX_SEQ,
    PROTOCOL_VERSION,
    TAG_BYTES,
)
from fedzo.edge.protocol.header import pack_header

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
H = bytes(range(8))


def welcome(nonce=b"S" * 16, **kw):
    fields = dict(agent_id=1, block=0, n_agents=2, d=100, seed=7, round=0, theta_hash=H,
                  config_json="{}", nonce=nonce)
    fields.update(kw)
    return Welcome(**fields)


def rejected(session):
    return sum(session.rejections.values())


# -- handshake and normal traffic ---------------------------------------------

def test_handshake_states_and_sequence_numbers():
    agent, coord = Session(AGENT, RUN_KEY), Session(COORDINATOR, RUN_KEY)
    assert agent.state is State.IDLE and coord.state is State.IDLE
    join = Join(capabilities=Join().capabilities)
    frame = agent.seal(join)
    assert peek_header(frame).flags == FLAG_HANDSHAKE and peek_header(frame).seq == 0
    assert agent.state is State.HANDSHAKE
    assert coord.open(frame) == join and coord.state is State.HANDSHAKE
    w = welcome()
    assert agent.open(coord.seal(w)) == w
    assert agent.established and coord.established
    f1 = coord.seal(RoundStart(1))
    assert peek_header(f1).flags == 0 and peek_header(f1).seq == 1
    assert agent.open(f1) == RoundStart(1)
    assert coord.open(agent.seal(Vote(1, 1, H))) == Vote(1, 1, H)
    assert (agent.send_seq, agent.recv_seq, coord.send_seq, coord.recv_seq) == (2, 1, 2, 1)
    assert rejected(agent) == rejected(coord) == 0


@SETTINGS
@given(st.lists(st.one_of(AGENT_MESSAGES.map(lambda m: ("up", m)),
                          COORDINATOR_MESSAGES.map(lambda m: ("down", m))), max_size=6))
def test_messages_survive_a_sealed_session(traffic):
    agent, coord = established_pair()
    for direction, msg in traffic:
        sender, receiver = (agent, coord) if direction == "up" else (coord, agent)
        assert receiver.open(sender.seal(msg)) == msg
    assert rejected(agent) == rejected(coord) == 0


def test_bye_closes_both_sides():
    agent, coord = established_pair()
    assert coord.open(agent.seal(Bye(1, "stopping"))) == Bye(1, "stopping")
    assert agent.state is State.CLOSED and coord.state is State.CLOSED
    with pytest.raises(SessionClosed):
        agent.seal(Vote(1, 0, H))
    with pytest.raises(SessionClosed):
        coord.seal(RoundStart(2))
    with pytest.raises(SessionClosed):
        coord.open(b"\x01" * 40)
    assert coord.rejections["closed"] == 1


def test_error_and_bye_are_allowed_during_the_handshake():
    agent, coord = Session(AGENT, RUN_KEY), Session(COORDINATOR, RUN_KEY)
    coord.open(agent.seal(Join()))
    e = Error(4, "run full")
    assert agent.open(coord.seal(e)) == e
    assert not agent.established
    assert agent.open(coord.seal(Bye(5))) == Bye(5)
    assert agent.state is State.CLOSED


# -- authentication and replay -------------------------------------------------

def test_wrong_key_is_a_bad_tag():
    agent = Session(AGENT, RUN_KEY)
    coord = Session(COORDINATOR, b"another-run-key-0123456789abcdef")
    with pytest.raises(BadTag):
        coord.open(agent.seal(Join()))
    assert coord.rejections["bad_tag"] == 1 and coord.state is State.IDLE


def test_same_frame_twice_is_a_replay():
    agent, coord = established_pair()
    frame = agent.seal(Vote(3, 1, H))
    coord.open(frame)
    with pytest.raises(ReplayedFrame):
        coord.open(frame)
    assert coord.rejections["replay"] == 1


def test_older_sequence_number_is_rejected_and_gaps_are_allowed():
    agent, coord = established_pair()
    f1, f2, f3 = (coord.seal(RoundStart(r)) for r in (1, 2, 3))
    assert agent.open(f2) == RoundStart(2)        # f1 lost: the gap is fine
    with pytest.raises(ReplayedFrame):
        agent.open(f1)                            # but a late older frame is not
    assert agent.open(f3) == RoundStart(3)
    assert agent.rejections["replay"] == 1


def test_frame_from_an_earlier_session_does_not_verify():
    agent1, coord1 = established_pair(agent_nonce=b"1" * 16, session_nonce=b"x" * 16)
    old = [agent1.seal(Vote(r, 1, H)) for r in range(3)]
    agent2, coord2 = established_pair(agent_nonce=b"2" * 16, session_nonce=b"y" * 16)
    for frame in old:                    # same key, same seqs, other session
        with pytest.raises(BadTag):
            coord2.open(frame)
    assert coord2.rejections["bad_tag"] == 3
    assert coord2.open(agent2.seal(Vote(0, 1, H))) == Vote(0, 1, H)


def test_replayed_join_is_refused_by_a_shared_registry():
    registry = NonceRegistry()
    agent = Session(AGENT, RUN_KEY)
    join_frame = agent.seal(Join(agent_id=4))
    Session(COORDINATOR, RUN_KEY, join_nonces=registry).open(join_frame)
    other_link = Session(COORDINATOR, RUN_KEY, join_nonces=registry)
    with pytest.raises(ReplayedFrame, match="nonce"):
        other_link.open(join_frame)
    assert other_link.rejections["replay"] == 1 and other_link.state is State.IDLE


def test_old_welcome_does_not_answer_a_new_join():
    agent, coord = Session(AGENT, RUN_KEY), Session(COORDINATOR, RUN_KEY)
    coord.open(agent.seal(Join()))
    old_welcome = coord.seal(welcome())
    agent.seal(Join())                   # the agent restarts its handshake
    with pytest.raises(BadTag):
        agent.open(old_welcome)
    assert not agent.established


def test_a_frame_reflected_to_its_sender_is_rejected():
    agent, coord = established_pair()
    frame = agent.seal(Vote(1, -1, H))
    with pytest.raises(ProtocolError):
        agent.open(frame)
    assert agent.rejections["bad_tag"] == 1


def test_welcome_replayed_inside_the_session_is_a_replay():
    agent, coord = Session(AGENT, RUN_KEY), Session(COORDINATOR, RUN_KEY)
    coord.open(agent.seal(Join()))
    w = coord.seal(welcome())
    agent.open(w)
    agent.open(coord.seal(RoundStart(1)))
    with pytest.raises(ReplayedFrame):
        agent.open(w)


def test_coordinator_accepts_a_fresh_join_on_a_live_link():
    agent, coord = established_pair()
    agent.open(coord.seal(RoundStart(5)))
    agent2 = Session(AGENT, RUN_KEY)               # the board rebooted
    join = Join(agent_id=1, round=5, theta_hash=H)
    assert coord.open(agent2.seal(join)) == join
    assert coord.state is State.HANDSHAKE and coord.send_seq == 0
    agent2.open(coord.seal(welcome(nonce=b"T" * 16, round=5)))
    assert coord.open(agent2.seal(Vote(5, 0, H))) == Vote(5, 0, H)


# -- malformed input -------------------------------------------------------------

def test_wrong_version_is_rejected_before_anything_else():
    agent, coord = established_pair()
    frame = bytearray(agent.seal(Vote(1, 1, H)))
    frame[0] = PROTOCOL_VERSION + 1
    with pytest.raises(WrongVersion, match="version 2"):
        coord.open(bytes(frame))
    assert coord.rejections["wrong_version"] == 1


def test_short_and_oversized_frames():
    agent, coord = established_pair()
    with pytest.raises(TruncatedFrame):
        coord.open(bytes(HEADER_BYTES + TAG_BYTES - 1))
    with pytest.raises(OversizedFrame):
        coord.open(bytes(MAX_FRAME_BYTES + 1))
    assert coord.rejections["truncated"] == 1 and coord.rejections["oversized"] == 1


def _forge(session, type_code, body, flags=0):
    """A frame tagged with the peer's real session key (tests only)."""
    header = pack_header(type_code, flags, session.send_seq)
    session.send_seq += 1
    return header + body + session._stx.tag(header, body)


def test_authentic_frame_of_an_unknown_type():
    agent, coord = established_pair()
    with pytest.raises(UnknownType, match="0x7f"):
        coord.open(_forge(agent, 0x7F, b"future"))
    assert coord.rejections["unknown_type"] == 1


def test_authentic_frame_with_a_bad_body_or_flags():
    agent, coord = established_pair()
    with pytest.raises(MalformedFrame):
        coord.open(_forge(agent, Vote.TYPE, bytes(4) + b"\x03" + bytes(8)))
    with pytest.raises(MalformedFrame, match="flag"):
        coord.open(_forge(agent, Vote.TYPE, Vote(1, 1, H).encode_body(), flags=0x80))
    assert coord.rejections["malformed"] == 2


def test_messages_in_the_wrong_direction_or_state():
    agent, coord = established_pair()
    with pytest.raises(UnexpectedMessage):
        coord.seal(Vote(1, 1, H))                  # a coordinator never votes
    with pytest.raises(UnexpectedMessage):
        agent.seal(RoundStart(1))
    with pytest.raises(UnexpectedMessage, match="coordinator does not send vote"):
        agent.open(_forge(coord, Vote.TYPE, Vote(1, 1, H).encode_body()))
    with pytest.raises(UnexpectedMessage):
        coord.open(_forge(agent, Join.TYPE, Join().encode_body()))  # join as a session frame
    fresh = Session(AGENT, RUN_KEY)
    with pytest.raises(UnexpectedMessage, match="join first"):
        fresh.seal(Vote(0, 1, H))
    with pytest.raises(UnexpectedMessage):
        fresh.open(b"\x01\x03\x00" + bytes(4) + bytes(4) + bytes(16))
    idle = Session(COORDINATOR, RUN_KEY)
    with pytest.raises(UnexpectedMessage, match="no join"):
        idle.seal(RoundStart(0))
    half = Session(COORDINATOR, RUN_KEY)
    half.open(Session(AGENT, RUN_KEY).seal(Join()))
    with pytest.raises(UnexpectedMessage, match="before the handshake"):
        half.seal(RoundStart(0))


def test_frames_larger_than_the_peer_accepts_are_refused_on_sealing():
    agent = Session(AGENT, RUN_KEY)
    coord = Session(COORDINATOR, RUN_KEY)
    join = Join()
    join = Join(capabilities=type(join.capabilities)(max_frame=1024))
    coord.open(agent.seal(join))
    assert coord.peer_max_frame == 1024
    agent.open(coord.seal(welcome()))
    with pytest.raises(OversizedFrame, match="1024"):
        coord.seal(RoundResult(1, (1,) * 4000, H))


def test_sequence_numbers_running_out_close_the_session():
    agent, coord = established_pair()
    agent.send_seq = MAX_SEQ
    coord.open(agent.seal(Vote(1, 1, H)))
    with pytest.raises(SessionClosed, match="exhausted"):
        agent.seal(Vote(2, 1, H))


def test_stale_round_helper_counts():
    agent, coord = established_pair()
    vote = coord.open(agent.seal(Vote(4, 1, H)))
    coord.check_round(vote, 4)
    with pytest.raises(StaleRound, match="round 4, the current round is 5"):
        coord.check_round(vote, 5)
    assert coord.rejections["stale_round"] == 1


# -- fuzzing ---------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_open(data):
    agent, coord = established_pair()
    for session in (agent, coord, Session(COORDINATOR, RUN_KEY)):
        before = rejected(session)
        with pytest.raises(ProtocolError):
            session.open(data)
        assert rejected(session) == before + 1


@SETTINGS
@given(COORDINATOR_MESSAGES, st.data())
def test_mutated_frames_are_the_original_or_rejected(msg, data):
    agent, coord = established_pair()
    original = coord.seal(msg)
    spare = coord.seal(RoundStart(9))
    frame = bytearray(original)
    how = data.draw(st.sampled_from(["truncate", "extend", "flip", "byte", "splice"]))
    if how == "truncate":
        frame = frame[:data.draw(st.integers(0, len(frame) - 1))]
    elif how == "extend":
        frame += data.draw(st.binary(min_size=1, max_size=16))
    elif how == "splice":
        cut = data.draw(st.integers(0, len(frame)))
        cut2 = data.draw(st.integers(0, len(spare)))
        frame = frame[:cut] + spare[cut2:]
    else:
        i = data.draw(st.integers(0, len(frame) - 1))
        if how == "flip":
            frame[i] ^= 1 << data.draw(st.integers(0, 7))
        else:
            frame[i] = data.draw(st.integers(0, 255))
    frame = bytes(frame)
    try:
        opened = agent.open(frame)
    except ProtocolError:
        assert rejected(agent) == 1
        assert frame != original
    else:
        assert frame in (original, spare) and opened in (msg, RoundStart(9))
