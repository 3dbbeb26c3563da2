"""Message codecs: round trips, canonical encodings, field validation, decoder fuzzing."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_strategies import ALL_MESSAGES

from fedzo.edge.protocol import (
    MESSAGE_TYPES,
    Bye,
    Capabilities,
    Challenge,
    Error,
    Hello,
    InvalidField,
    Join,
    MalformedFrame,
    ModelUpload,
    ProtocolError,
    Refusal,
    RoundResult,
    RoundResultNext,
    RoundStart,
    Sync,
    TruncatedFrame,
    Vote,
    Welcome,
    pack_votes,
    unpack_votes,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_type_table_is_consistent():
    assert len(MESSAGE_TYPES) == 15
    assert len({cls.NAME for cls in MESSAGE_TYPES.values()}) == 15
    for code, cls in MESSAGE_TYPES.items():
        assert cls.TYPE == code and 0 < code < 0x80
        assert cls.SENDER in ("agent", "coordinator", "either")


@SETTINGS
@given(ALL_MESSAGES)
def test_every_message_round_trips(msg):
    body = msg.encode_body()
    again = MESSAGE_TYPES[msg.TYPE].decode_body(body)
    assert again == msg and type(again) is type(msg)
    assert again.encode_body() == body


@pytest.mark.parametrize("msg, size", [
    (RoundStart(5), 4),
    (Vote(5, -1, bytes(8)), 13),
    (RoundResult(5, (1, 0, -1, 1, 1), bytes(8)), 16),
    (RoundResultNext(5, (1, 0, -1, 1, 1), bytes(8)), 16),
    (Hello(), 16),
    (Challenge(), 20),
    (Challenge(d=10, terms_json="{}"), 22),
    (Refusal(2, bytes(16)), 18),
    (Join(), 78),
    (Welcome(0, 0, 1, 10, 1, 0, bytes(8), "{}"), 66),
    (Error(3, "abc"), 5),
    (Bye(), 2),
])
def test_body_sizes_match_the_documented_table(msg, size):
    assert len(msg.encode_body()) == size


def test_vote_packing_layout_and_strictness():
    # vote j in bits 2*(j%4) of byte j//4; +1 -> 01, -1 -> 10
    assert pack_votes((1, -1, 0, 1, -1)) == bytes([0b01_00_10_01, 0b10])
    assert unpack_votes(bytes([0b01_00_10_01, 0b10]), 5) == (1, -1, 0, 1, -1)
    with pytest.raises(MalformedFrame, match="0b11"):
        unpack_votes(bytes([0b11]), 1)
    with pytest.raises(MalformedFrame, match="padding"):
        unpack_votes(bytes([0b0100_0001]), 1)
    with pytest.raises(MalformedFrame):
        unpack_votes(bytes(2), 4)


@given(st.lists(st.sampled_from([-1, 0, 1]), min_size=1, max_size=70))
def test_vote_packing_round_trips(votes):
    packed = pack_votes(votes)
    assert len(packed) == (len(votes) + 3) // 4
    assert unpack_votes(packed, len(votes)) == tuple(votes)


@pytest.mark.parametrize("build", [
    lambda: Vote(1, 2, bytes(8)),
    lambda: Vote(-1, 0, bytes(8)),
    lambda: Vote(2**32 - 1, 0, bytes(8)),            # the NO_ROUND sentinel is not a round
    lambda: Vote(1, 0, bytes(7)),
    lambda: Vote(1.0, 0, bytes(8)),
    lambda: RoundResult(1, (), bytes(8)),
    lambda: RoundResult(1, (0, 2), bytes(8)),
    lambda: Welcome(0, 5, 5, 10, 1, 0, bytes(8), "{}"),   # block >= n_agents
    lambda: Welcome(0, 0, 0, 10, 1, 0, bytes(8), "{}"),
    lambda: Welcome(2**32 - 1, 0, 1, 10, 1, 0, bytes(8), "{}"),
    lambda: Welcome(0, 0, 1, 10, 1, 0, bytes(8), "[1, 2]"),
    lambda: Welcome(0, 0, 1, 10, 1, 0, bytes(8), '{"a": NaN}'),
    lambda: Welcome(0, 0, 1, 10, 1, 0, bytes(8), '{"a":' + "[" * 4000 + "]" * 4000 + "}"),  # deep
    lambda: Welcome(0, 0, 1, 10, 1, 0, bytes(8), "{" + '"a":' * 900),
    lambda: Welcome(0, 0, 1, 10, 1, 0, bytes(8), '{"x": "' + "a" * 8200 + '"}'),
    lambda: Join(round=3),
    lambda: Join(key_share=b"short"),
    lambda: Join(rejoin_proof=bytes(15)),
    lambda: Hello(b"short"),
    lambda: Capabilities(backend="cuda"),
    lambda: Capabilities(store_bits=8),
    lambda: Capabilities(max_frame=100),
    lambda: Sync(1, 4, 0, "int16", 16, bytes(8), bytes(4)),      # frac_bits too large
    lambda: Sync(1, 4, 0, "int8", 0, bytes(8), bytes(4)),
    lambda: Sync(1, 4, 3, "int16", 0, bytes(8), bytes(4)),       # offset + n > total
    lambda: Sync(1, 4, 0, "int16", 0, bytes(8), bytes(3)),       # not whole elements
    lambda: Sync(1, 4, 0, "int16", 0, bytes(8), b""),            # empty chunk of a vector
    lambda: ModelUpload(1, 1, 0, bytes(6)),
    lambda: Error(70000, ""),
    lambda: Error(1, "x" * 256),
    lambda: Bye(0, "\ud800"),
])
def test_out_of_range_fields_are_refused(build):
    with pytest.raises(InvalidField):
        build()


def test_decoder_rejects_bad_bodies_with_specific_errors():
    with pytest.raises(TruncatedFrame):
        Vote.decode_body(bytes(12))
    with pytest.raises(MalformedFrame, match="exactly"):
        Vote.decode_body(bytes(14))
    with pytest.raises(MalformedFrame, match="-1, 1"):
        Vote.decode_body(bytes(4) + b"\x05" + bytes(8))
    with pytest.raises(MalformedFrame, match="UTF-8"):
        Error.decode_body(b"\x00\x01\xff\xfe")
    with pytest.raises(MalformedFrame, match="limit"):
        Bye.decode_body(bytes(2 + 256))
    join = bytearray(Join().encode_body())
    join[29] = 1                                     # hash without a round
    with pytest.raises(MalformedFrame, match="without a round"):
        Join.decode_body(bytes(join))
    join = bytearray(Join().encode_body())
    join[4] = 9                                      # backend code
    with pytest.raises(MalformedFrame, match="backend"):
        Join.decode_body(bytes(join))
    rr = RoundResult(1, (1, 1, 1, 1, 1), bytes(8)).encode_body()
    with pytest.raises(TruncatedFrame):
        RoundResult.decode_body(rr[:-1])
    with pytest.raises(MalformedFrame):
        RoundResult.decode_body(rr + b"\x00")
    sync = bytearray(Sync(1, 2, 0, "int16", 3, bytes(8), bytes(4)).encode_body())
    sync[12] = 7                                     # dtype code
    with pytest.raises(MalformedFrame, match="dtype"):
        Sync.decode_body(bytes(sync))


def _decodes_canonically_or_fails(type_code, body):
    try:
        msg = MESSAGE_TYPES[type_code].decode_body(body)
    except ProtocolError:
        return None
    assert msg.encode_body() == body     # one message per body, and back
    return msg


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(MESSAGE_TYPES)), st.binary(max_size=120))
def test_decoders_on_random_bytes(type_code, body):
    _decodes_canonically_or_fails(type_code, body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ALL_MESSAGES, st.data())
def test_decoders_on_mutated_bodies(msg, data):
    body = bytearray(msg.encode_body())
    how = data.draw(st.sampled_from(["truncate", "flip", "extend", "byte"]))
    if how == "truncate":
        body = body[:data.draw(st.integers(0, max(len(body) - 1, 0)))]
    elif how == "extend":
        body += data.draw(st.binary(min_size=1, max_size=8))
    elif body:
        i = data.draw(st.integers(0, len(body) - 1))
        if how == "flip":
            body[i] ^= 1 << data.draw(st.integers(0, 7))
        else:
            body[i] = data.draw(st.integers(0, 255))
    _decodes_canonically_or_fails(msg.TYPE, bytes(body))


def test_welcome_config_helpers():
    w = Welcome(3, 1, 4, 10, 2**64 - 1, 9, bytes(8), '{"alpha": 0.5, "task": "hopper"}')
    assert w.config == {"alpha": 0.5, "task": "hopper"}
    assert Welcome.decode_body(w.encode_body()).config == w.config
