"""A key per agent: key files, the Hello that names its agent, and what a Keyring lets through."""
import os
import stat

import pytest
from protocol_strategies import RUN_KEY, handshake

from fedzo.edge.protocol import (
    AGENT,
    COORDINATOR,
    AgentKey,
    AgentRevoked,
    BadTag,
    Challenge,
    ErrorCode,
    Hello,
    InvalidField,
    Join,
    Keyring,
    RoundStart,
    Session,
    State,
    Vote,
    WrongAgent,
)
from fedzo.edge.protocol.agentkeys import (
    parse_agent_key_text,
    read_agent_key_file,
    read_key,
    write_agent_key_file,
)
from fedzo.edge.protocol.keyfile import KeyFileError, write_key_file

SECRETS = {k: bytes([k + 1]) * 15 + bytes([0xA0 + k]) for k in range(4)}   # 16 bytes, not one repeated byte


def key(k):
    return AgentKey(k, SECRETS[k])


def ring(*revoked):
    return Keyring([key(k) for k in SECRETS], revoked)


# ---- key files ----

def test_an_agent_key_file_round_trips_with_mode_0600_and_is_not_overwritten(tmp_path):
    path = tmp_path / "agent-3.key"
    written = write_agent_key_file(path, 3)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_agent_key_file(path) == written and read_key(path) == written
    assert written.agent_id == 3 and len(written.secret) == 32
    with pytest.raises(FileExistsError):
        write_agent_key_file(path, 3)
    assert read_agent_key_file(path) == written          # untouched
    os.chmod(path, 0o644)
    again = write_agent_key_file(path, 3, overwrite=True)
    assert again != written and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_read_key_tells_a_run_key_from_an_agent_key(tmp_path):
    write_key_file(tmp_path / "run.key", RUN_KEY)
    assert read_key(tmp_path / "run.key") == RUN_KEY
    binary = tmp_path / "binary.key"
    binary.write_bytes(os.urandom(32) + b"\xff")
    os.chmod(binary, 0o600)
    with pytest.raises(KeyFileError, match="not a hex key"):    # as a run key file says it
        read_key(binary)


@pytest.mark.parametrize("text, words", [
    ("agent 1\n", "one line of hex"),
    ("agent 1\nagent 2\n" + "ab" * 16, "one 'agent N' line, found 2"),
    ("agent one\n" + "ab" * 16, "'one' is not an agent id"),
    ("agent 4294967295\n" + "ab" * 16, "is not an agent id"),
    ("agent 1\n" + "00" * 16, "repeats one byte"),
    ("agent 1\n" + "ab" * 8, "8 bytes"),
    ("agent 1\nab12\ncd34", "found 2"),
])
def test_a_bad_agent_key_file_is_refused_with_what_is_wrong(text, words):
    with pytest.raises(KeyFileError, match=words):
        parse_agent_key_text(text, "the agent key in F")


def test_an_agent_key_file_open_to_others_is_refused(tmp_path):
    path = tmp_path / "agent-0.key"
    write_agent_key_file(path, 0)
    os.chmod(path, 0o640)
    with pytest.raises(KeyFileError, match="chmod 600"):
        read_key(path)


# ---- the Hello ----

def test_the_run_key_hello_is_unchanged_and_an_agent_key_hello_carries_the_id():
    assert Hello(b"N" * 16).encode_body() == b"N" * 16
    frame = Session(AGENT, RUN_KEY).seal(Hello(b"N" * 16))
    assert len(frame) == 39
    keyed = Session(AGENT, key(2)).seal(Hello(b"N" * 16))
    assert len(keyed) == 43 and keyed[7:27] == b"N" * 16 + (2).to_bytes(4, "big")
    assert Hello.decode_body(b"N" * 16 + bytes([0, 0, 1, 0])) == Hello(b"N" * 16, 256)
    with pytest.raises(InvalidField):
        Hello.decode_body(b"N" * 16 + b"\xff" * 4)        # "assign me one" is no key's id
    with pytest.raises(InvalidField):
        Hello(agent_id=-1)


def test_agent_keys_give_each_agent_other_session_keys_than_the_run_key():
    assert key(1).root != key(2).root != SECRETS[1]
    assert AgentKey(1, SECRETS[2]).root != key(2).root   # the id is in the key: one secret, two ids, two keys


# ---- what the coordinator's Keyring lets through ----

def test_an_agent_joins_under_its_own_key_and_the_session_is_bound_to_it():
    keyring = ring()
    agent, coord = Session(AGENT, key(1)), Session(COORDINATOR, keyring)
    opened = handshake(agent, coord, agent_id=1)
    assert opened.agent_id == 1 and agent.established and coord.established and coord.keyed_id == 1
    assert isinstance(agent.open(coord.seal(RoundStart(0))), RoundStart)
    assert isinstance(coord.open(agent.seal(Vote(0, 1, bytes(8)))), Vote)
    # Agent 2's key cannot speak in agent 1's session.
    other = Session(AGENT, key(2))
    handshake(other, Session(COORDINATOR, keyring), agent_id=2)
    with pytest.raises(BadTag):
        coord.open(other.seal(Vote(0, -1, bytes(8))))


def test_an_assigned_id_join_under_an_agent_key_is_the_keys_id():
    agent, coord = Session(AGENT, key(3)), Session(COORDINATOR, ring())
    assert handshake(agent, coord, join=Join()).agent_id == 3
    with pytest.raises(ValueError, match="join as agent 2 under agent 3's key"):
        handshake(Session(AGENT, key(3)), Session(COORDINATOR, ring()), agent_id=2)


def test_agent_ks_key_cannot_join_as_agent_j():
    keyring = ring()
    coord = Session(COORDINATOR, keyring)
    # A Hello naming j, tagged under k's key, does not verify: Refusal AUTH_FAILED.
    thief = Session(AGENT, AgentKey(2, SECRETS[1]))
    with pytest.raises(BadTag) as caught:
        coord.open(thief.seal(Hello()))
    assert caught.value.refusal.code == ErrorCode.AUTH_FAILED
    # A Hello as k, then a Join for j (forged past the agent's own check): refused, counted.
    agent = Session(AGENT, key(1))
    coord.open(agent.seal(Hello()))
    agent.open(coord.seal(Challenge()))
    agent.keyed_id = None                       # what a modified agent could do
    with pytest.raises(WrongAgent):
        coord.open(agent.seal(Join(2)))
    assert coord.state is State.CHALLENGED and not coord.established
    assert keyring.refused["wrong_agent"] == 1 and coord.rejections["wrong_agent"] == 1


def test_a_revoked_agents_hello_is_refused_with_revoked_and_counted():
    keyring = ring(1)
    coord = Session(COORDINATOR, keyring)
    with pytest.raises(AgentRevoked) as caught:
        coord.open(Session(AGENT, key(1)).seal(Hello()))
    assert caught.value.refusal.code == ErrorCode.REVOKED
    assert keyring.refused["revoked"] == 1 and coord.rejections["revoked"] == 1
    assert coord.state is State.IDLE
    handshake(Session(AGENT, key(2)), coord, agent_id=2)     # others are not affected
    assert coord.established


def test_a_key_revoked_or_replaced_between_hello_and_join_is_refused_at_the_join():
    for change in ("revoke", "rekey"):
        keyring = ring()
        agent, coord = Session(AGENT, key(1)), Session(COORDINATOR, keyring)
        coord.open(agent.seal(Hello()))
        agent.open(coord.seal(Challenge()))
        if change == "revoke":
            assert keyring.replace([key(k) for k in SECRETS], {1}) == {1}
        else:
            new = [key(k) for k in SECRETS if k != 1] + [AgentKey(1, b"\x5a" * 15 + b"\x01")]
            assert keyring.replace(new, ()) == {1}
        with pytest.raises(AgentRevoked):
            coord.open(agent.seal(Join(1)))
        assert not coord.established


def test_only_the_keys_that_fit_open_a_hello():
    keyring = Keyring([key(0)])
    coord = Session(COORDINATOR, keyring)
    for hello in (Session(AGENT, RUN_KEY).seal(Hello()),       # the run key: refused
                  Session(AGENT, key(1)).seal(Hello())):       # an id without a key here
        with pytest.raises(BadTag) as caught:
            coord.open(hello)
        assert caught.value.refusal.code == ErrorCode.AUTH_FAILED
    assert keyring.refused["no_key"] == 1
    # A run-key coordinator refuses an agent key's Hello as a wrong key.
    with pytest.raises(BadTag) as caught:
        Session(COORDINATOR, RUN_KEY).open(Session(AGENT, key(0)).seal(Hello()))
    assert caught.value.refusal.code == ErrorCode.AUTH_FAILED


def test_a_failed_hello_leaves_an_established_keyed_session_as_it_was():
    keyring = ring(2)
    agent, coord = Session(AGENT, key(1)), Session(COORDINATOR, keyring)
    handshake(agent, coord, agent_id=1)
    for bad in (Session(AGENT, key(2)).seal(Hello()), Session(AGENT, AgentKey(3, SECRETS[1])).seal(Hello())):
        with pytest.raises((AgentRevoked, BadTag)):
            coord.open(bad)
    assert coord.established and coord.keyed_id == 1
    assert isinstance(coord.open(agent.seal(Vote(0, 1, bytes(8)))), Vote)


def test_keyring_replace_names_the_sessions_to_end():
    keyring = ring()
    assert keyring.replace([key(k) for k in SECRETS], {3, 9}) == {3}       # 9 has no key: no session
    assert keyring.replace([key(k) for k in SECRETS], {3, 9}) == set()     # nothing new
    assert keyring.replace([key(0), key(1), key(3)], {9}) == {2}           # 2's key gone; 3 un-revoked
    with pytest.raises(ValueError, match="two keys for agent 0"):
        keyring.replace([key(0), key(0)], ())
    with pytest.raises(ValueError):
        Session(AGENT, keyring)
    with pytest.raises(ValueError):
        Session(COORDINATOR, key(0))
