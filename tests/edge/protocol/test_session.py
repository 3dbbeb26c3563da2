"""Session: handshake, seal/open, authentication, anti-replay, rejection counting."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_strategies import (
    AGENT_MESSAGES,
    COORDINATOR_MESSAGES,
    RUN_KEY,
    established_pair,
    handshake,
)

from fedzo.edge.protocol import (
    AGENT,
    COORDINATOR,
    BadRefusal,
    BadTag,
    Bye,
    Challenge,
    Error,
    ErrorCode,
    Hello,
    Join,
    MalformedFrame,
    OversizedFrame,
    ProtocolError,
    Refusal,
    RejoinSecrets,
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
    seal_refusal,
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


def welcome(**kw):
    fields = dict(agent_id=1, block=0, n_agents=2, d=100, seed=7, round=0, theta_hash=H,
                  config_json="{}")
    fields.update(kw)
    return Welcome(**fields)


def rejected(session):
    return sum(session.rejections.values())


# -- handshake and normal traffic ---------------------------------------------

def _hello_challenge(agent, coord):
    coord.open(agent.seal(Hello()))
    agent.open(coord.seal(Challenge()))


def test_handshake_states_and_sequence_numbers():
    agent, coord = Session(AGENT, RUN_KEY), Session(COORDINATOR, RUN_KEY)
    assert agent.state is State.IDLE and coord.state is State.IDLE
    hello = Hello()
    frame = agent.seal(hello)
    assert peek_header(frame).flags == FLAG_HANDSHAKE and peek_header(frame).seq == 0
    assert agent.state is State.GREETED
    assert coord.open(frame) == hello and coord.state is State.GREETED
    challenge = Challenge()
    assert agent.open(coord.seal(challenge)) == challenge
    assert agent.state is State.CHALLENGED and coord.state is State.CHALLENGED
    frame = agent.seal(Join())
    assert peek_header(frame).flags == FLAG_HANDSHAKE and peek_header(frame).seq == 1
    assert agent.state is State.JOINED
    join = coord.open(frame)
    assert join.key_share != bytes(32) and join.rejoin_proof == bytes(16) and not join.rejoin_proven
    assert coord.state is State.JOINED
    w = agent.open(coord.seal(welcome()))
    assert w.key_share != bytes(32) and w.key_share != join.key_share
    assert agent.established and coord.established
    f1 = coord.seal(RoundStart(1))
    assert peek_header(f1).flags == 0 and peek_header(f1).seq == 2
    assert agent.open(f1) == RoundStart(1)
    assert coord.open(agent.seal(Vote(1, 1, H))) == Vote(1, 1, H)
    assert (agent.send_seq, agent.recv_seq, coord.send_seq, coord.recv_seq) == (3, 2, 3, 2)
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
        coord.open(bytes([PROTOCOL_VERSION]) * 40)
    assert coord.rejections["closed"] == 1


def test_error_and_bye_are_allowed_during_the_handshake():
    agent, coord = Session(AGENT, RUN_KEY), Session(COORDINATOR, RUN_KEY)
    _hello_challenge(agent, coord)
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
        coord.open(agent.seal(Hello()))
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
    agent1, coord1 = established_pair(agent_nonce=b"1" * 16, challenge=b"x" * 16)
    old = [agent1.seal(Vote(r, 1, H)) for r in range(3)]
    agent2, coord2 = established_pair(agent_nonce=b"2" * 16, challenge=b"y" * 16)
    for frame in old:                    # same key, same seqs, other session
        with pytest.raises(BadTag):
            coord2.open(frame)
    assert coord2.rejections["bad_tag"] == 3
    assert coord2.open(agent2.seal(Vote(0, 1, H))) == Vote(0, 1, H)


def test_a_recorded_join_fails_against_a_restarted_coordinator():
    """Issue 11, finding 1: a recorded Join was accepted by a coordinator restarted with the same key."""
    agent = Session(AGENT, RUN_KEY)
    first = Session(COORDINATOR, RUN_KEY)
    hello_frame = agent.seal(Hello())
    first.open(hello_frame)
    agent.open(first.seal(Challenge()))
    join_frame = agent.seal(Join(agent_id=4))
    first.open(join_frame)
    restarted = Session(COORDINATOR, RUN_KEY)     # a new process, the same run key
    with pytest.raises(UnexpectedMessage):        # a Join before any Hello
        restarted.open(join_frame)
    restarted.open(hello_frame)                   # the replayed Hello only earns a Challenge ...
    restarted.seal(Challenge())
    with pytest.raises(BadTag):                   # ... that the recorded Join does not answer
        restarted.open(join_frame)
    assert restarted.state is State.CHALLENGED
    with pytest.raises(UnexpectedMessage):        # so no Welcome can be sent
        restarted.seal(welcome(agent_id=4))
    assert {k: v for k, v in restarted.rejections.items() if v} == {"unexpected": 1, "bad_tag": 1}


def test_a_recorded_join_fails_against_a_second_hello_on_the_same_coordinator():
    agent, coord = Session(AGENT, RUN_KEY), Session(COORDINATOR, RUN_KEY)
    hello_frame = agent.seal(Hello())
    coord.open(hello_frame)
    agent.open(coord.seal(Challenge()))
    join_frame = agent.seal(Join())
    other_link = Session(COORDINATOR, RUN_KEY)
    other_link.open(hello_frame)
    other_link.seal(Challenge())
    with pytest.raises(BadTag):
        other_link.open(join_frame)


def test_old_welcome_does_not_answer_a_new_join():
    agent, coord = Session(AGENT, RUN_KEY), Session(COORDINATOR, RUN_KEY)
    _hello_challenge(agent, coord)
    coord.open(agent.seal(Join()))
    old_welcome = coord.seal(welcome())
    agent.seal(Hello())                  # the agent restarts its handshake
    with pytest.raises(BadTag):
        agent.open(old_welcome)
    assert not agent.established


def test_a_key_holder_who_listens_cannot_derive_the_session_keys():
    """Issue 11, finding 3: both session nonces travelled in clear, so any key
    holder could derive another agent's session keys. Now the keys also need
    the X25519 secret Z, which never travels."""
    from fedzo.edge.protocol.auth import new_key_pair, session_master, session_tagger, x25519
    from fedzo.edge.protocol.header import split_frame

    agent, coord = Session(AGENT, RUN_KEY), Session(COORDINATOR, RUN_KEY)
    hello, challenge = Hello(), Challenge()
    coord.open(agent.seal(hello))
    agent.open(coord.seal(challenge))
    join = coord.open(agent.seal(Join(agent_id=1)))
    agent_private = agent._private
    w = agent.open(coord.seal(welcome()))
    vote_frame = agent.seal(Vote(0, 1, H))
    _, hbytes, body, tag = split_frame(vote_frame, MAX_FRAME_BYTES)
    public = (hello.nonce, challenge.nonce, join.key_share, w.key_share)

    def verifies(shared):
        return session_tagger(session_master(RUN_KEY, *public, shared), "up").verify(hbytes, body, tag)

    assert verifies(x25519(agent_private, w.key_share))      # the construction is right ...
    insider_private, _ = new_key_pair()                      # ... but nothing an insider can compute works
    for guess in (bytes(32), join.key_share, w.key_share, x25519(insider_private, join.key_share),
                  x25519(insider_private, w.key_share)):
        assert not verifies(guess)


def test_a_rejoin_proves_the_last_sessions_secret():
    secrets = RejoinSecrets()
    agent = Session(AGENT, RUN_KEY)
    handshake(agent, Session(COORDINATOR, RUN_KEY, rejoin_secrets=secrets), agent_id=3)
    assert len(secrets) == 1 and agent.rejoin_secret == secrets.get(3)
    again = handshake(agent, Session(COORDINATOR, RUN_KEY, rejoin_secrets=secrets), agent_id=3,
                      agent_nonce=b"B" * 16, challenge=b"D" * 16)
    assert again.rejoin_proven
    # Another key holder claiming id 3 has no such secret.
    insider = handshake(Session(AGENT, RUN_KEY), Session(COORDINATOR, RUN_KEY, rejoin_secrets=secrets),
                        agent_id=3, agent_nonce=b"E" * 16, challenge=b"F" * 16)
    assert not insider.rejoin_proven


def test_a_recorded_rejoin_proof_does_not_work_in_another_handshake():
    """An insider who re-tags a victim's rejoin Join under its own Challenge gains nothing."""
    from fedzo.edge.protocol.auth import handshake_tagger
    from fedzo.edge.protocol.header import pack_header

    secrets = RejoinSecrets()
    victim = Session(AGENT, RUN_KEY)
    handshake(victim, Session(COORDINATOR, RUN_KEY, rejoin_secrets=secrets), agent_id=2)
    coord = Session(COORDINATOR, RUN_KEY, rejoin_secrets=secrets)
    _hello_challenge(victim, coord)
    victims_join = coord.open(victim.seal(Join(agent_id=2)))
    assert victims_join.rejoin_proven
    insider_coord = Session(COORDINATOR, RUN_KEY, rejoin_secrets=secrets)
    nonce_a = b"I" * 16
    insider_coord.open(Session(AGENT, RUN_KEY).seal(Hello(nonce_a)))
    nonce_c = Challenge()
    insider_coord.seal(nonce_c)
    body = Join(2, key_share=victims_join.key_share, rejoin_proof=victims_join.rejoin_proof).encode_body()
    header = pack_header(Join.TYPE, FLAG_HANDSHAKE, 1)
    tag = handshake_tagger(RUN_KEY, "up", nonce_a + nonce_c.nonce).tag(header, body)
    forged = insider_coord.open(header + body + tag)     # the run key makes the tag good ...
    assert not forged.rejoin_proven                      # ... but the proof is bound to the victim's handshake


def test_a_low_order_key_share_is_refused():
    agent, coord = Session(AGENT, RUN_KEY), Session(COORDINATOR, RUN_KEY)
    _hello_challenge(agent, coord)
    from fedzo.edge.protocol.auth import handshake_tagger
    from fedzo.edge.protocol.header import pack_header
    body = Join(key_share=bytes(32)).encode_body()
    header = pack_header(Join.TYPE, FLAG_HANDSHAKE, 1)
    tag = handshake_tagger(RUN_KEY, "up", agent.agent_nonce + agent.challenge).tag(header, body)
    with pytest.raises(MalformedFrame, match="low-order"):
        coord.open(header + body + tag)
    assert not coord.established


def test_a_frame_reflected_to_its_sender_is_rejected():
    agent, coord = established_pair()
    frame = agent.seal(Vote(1, -1, H))
    with pytest.raises(ProtocolError):
        agent.open(frame)
    assert agent.rejections["bad_tag"] == 1


def test_welcome_replayed_inside_the_session_is_refused():
    agent, coord = Session(AGENT, RUN_KEY), Session(COORDINATOR, RUN_KEY)
    _hello_challenge(agent, coord)
    coord.open(agent.seal(Join()))
    w = coord.seal(welcome())
    agent.open(w)
    agent.open(coord.seal(RoundStart(1)))
    with pytest.raises(UnexpectedMessage, match="while established"):
        agent.open(w)


def test_coordinator_accepts_a_fresh_hello_on_a_live_link():
    agent, coord = established_pair()
    agent.open(coord.seal(RoundStart(5)))
    agent2 = Session(AGENT, RUN_KEY)               # the board rebooted
    hello = Hello()
    assert coord.open(agent2.seal(hello)) == hello
    assert coord.state is State.GREETED and coord.send_seq == 0
    agent2.open(coord.seal(Challenge()))
    join = coord.open(agent2.seal(Join(agent_id=1, round=5, theta_hash=H)))
    assert (join.agent_id, join.round, join.theta_hash) == (1, 5, H)
    agent2.open(coord.seal(welcome(round=5)))
    assert coord.open(agent2.seal(Vote(5, 0, H))) == Vote(5, 0, H)


# -- malformed input -------------------------------------------------------------

def test_wrong_version_is_rejected_before_anything_else():
    agent, coord = established_pair()
    frame = bytearray(agent.seal(Vote(1, 1, H)))
    frame[0] = PROTOCOL_VERSION + 1
    with pytest.raises(WrongVersion, match=f"version {PROTOCOL_VERSION + 1}"):
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
    with pytest.raises(UnexpectedMessage, match="hello first"):
        fresh.seal(Vote(0, 1, H))
    with pytest.raises(UnexpectedMessage):
        fresh.open(bytes([PROTOCOL_VERSION, 3, 0]) + bytes(4) + bytes(4) + bytes(16))
    idle = Session(COORDINATOR, RUN_KEY)
    with pytest.raises(UnexpectedMessage, match="no hello"):
        idle.seal(RoundStart(0))
    with pytest.raises(UnexpectedMessage, match="idle"):
        idle.seal(Challenge())
    half = Session(COORDINATOR, RUN_KEY)
    half.open(Session(AGENT, RUN_KEY).seal(Hello()))
    with pytest.raises(UnexpectedMessage, match="before the handshake"):
        half.seal(RoundStart(0))


def test_frames_larger_than_the_peer_accepts_are_refused_on_sealing():
    agent = Session(AGENT, RUN_KEY)
    coord = Session(COORDINATOR, RUN_KEY)
    join = Join()
    join = Join(1, capabilities=type(join.capabilities)(max_frame=1024))
    handshake(agent, coord, join=join)
    assert coord.peer_max_frame == 1024
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


# -- refusals (protocol 3): unauthenticated, taken only as the answer to our own Hello --

OTHER_KEY = b"another-run-key-0123456789abcdef"


def test_a_hello_under_another_key_is_rejected_with_the_refusal_that_answers_it():
    agent, coord = Session(AGENT, OTHER_KEY), Session(COORDINATOR, RUN_KEY)
    hello = Hello()
    with pytest.raises(BadTag) as rejected_hello:
        coord.open(agent.seal(hello))
    refusal = rejected_hello.value.refusal
    assert refusal == Refusal(ErrorCode.AUTH_FAILED, hello.nonce)
    assert coord.state is State.IDLE                         # nothing changed on the coordinator
    frame = seal_refusal(refusal)
    assert len(frame) == HEADER_BYTES + 18 + TAG_BYTES and frame[-TAG_BYTES:] == bytes(TAG_BYTES)
    assert agent.open(frame) == refusal and agent.state is State.CLOSED


def test_a_hello_of_another_version_is_refused_with_bad_version():
    agent, coord = Session(AGENT, RUN_KEY), Session(COORDINATOR, RUN_KEY)
    hello = Hello()
    frame = bytearray(agent.seal(hello))
    frame[0] = PROTOCOL_VERSION + 1
    with pytest.raises(WrongVersion) as rejected_hello:
        coord.open(bytes(frame))
    assert rejected_hello.value.refusal == Refusal(ErrorCode.BAD_VERSION, hello.nonce)
    # ... and an agent reads a refusal whatever version its header says (the layout is frozen).
    refusal = bytearray(seal_refusal(rejected_hello.value.refusal))
    refusal[0] = PROTOCOL_VERSION + 1
    assert agent.open(bytes(refusal)).code == ErrorCode.BAD_VERSION


def test_other_rejections_carry_no_refusal():
    agent, coord = established_pair()
    frame = bytearray(agent.seal(Vote(0, 1, H)))
    frame[-1] ^= 1
    with pytest.raises(BadTag) as bad_vote:
        coord.open(bytes(frame))
    assert getattr(bad_vote.value, "refusal", None) is None  # only a Hello is answered


@pytest.mark.parametrize("when", ["other nonce", "after the challenge", "established", "non-zero tag",
                                  "before any hello"])
def test_a_refusal_that_does_not_answer_our_own_hello_is_counted_and_ignored(when):
    agent, coord = Session(AGENT, RUN_KEY), Session(COORDINATOR, RUN_KEY)
    hello = Hello()
    if when not in ("before any hello", "established"):
        coord.open(agent.seal(hello))
    refusal = seal_refusal(Refusal(ErrorCode.AUTH_FAILED, hello.nonce))
    if when == "other nonce":
        refusal = seal_refusal(Refusal(ErrorCode.AUTH_FAILED, bytes(16)))
    elif when == "after the challenge":
        agent.open(coord.seal(Challenge()))
    elif when == "established":
        handshake(agent, coord, agent_nonce=hello.nonce)
    elif when == "non-zero tag":
        refusal = refusal[:-1] + b"\x01"
    state = agent.state
    with pytest.raises(BadRefusal):
        agent.open(refusal)
    assert agent.state is state and agent.rejections["bad_refusal"] == 1
    if when in ("other nonce", "non-zero tag"):              # the real answer is still taken
        assert isinstance(agent.open(coord.seal(Challenge())), Challenge)


def test_a_session_does_not_seal_a_refusal():
    with pytest.raises(TypeError, match="seal_refusal"):
        Session(COORDINATOR, RUN_KEY).seal(Refusal(ErrorCode.AUTH_FAILED, bytes(16)))


def test_the_challenge_carries_the_runs_terms():
    agent, coord = Session(AGENT, RUN_KEY), Session(COORDINATOR, RUN_KEY)
    coord.open(agent.seal(Hello()))
    challenge = agent.open(coord.seal(Challenge(d=5123, terms_json='{"task":"hopper"}')))
    assert challenge.d == 5123 and challenge.terms == {"task": "hopper"}
    assert Challenge().terms is None
