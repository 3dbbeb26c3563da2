"""TCP length-prefix framing, COBS and serial framing: incremental readers under abuse."""
import random
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedzo.edge.protocol import (
    BadChecksum,
    FrameReader,
    Garbage,
    OversizedFrame,
    SerialReader,
    StreamBroken,
    TruncatedFrame,
    cobs_decode,
    cobs_encode,
    length_prefixed,
    serial_decode,
    serial_encode,
)
from fedzo.edge.protocol.cobs import cobs_max_encoded
from fedzo.edge.protocol.constants import MAX_FRAME_BYTES

frames_st = st.lists(st.binary(max_size=300), max_size=12)


def splits(data: bytes, cuts):
    """data cut at the given positions (sorted, deduplicated)."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


# -- TCP ---------------------------------------------------------------------------

def test_length_prefix_layout():
    assert length_prefixed(b"abc") == b"\x00\x00\x00\x03abc"
    with pytest.raises(OversizedFrame):
        length_prefixed(bytes(MAX_FRAME_BYTES + 1))


@settings(max_examples=150, deadline=None)
@given(frames_st, st.lists(st.integers(0, 10**6), max_size=20))
def test_frame_reader_in_random_pieces(frames, cuts):
    stream = b"".join(length_prefixed(f) for f in frames)
    reader = FrameReader()
    got = []
    for piece in splits(stream, cuts):
        got += reader.feed_sized(piece)
    assert [f for f, _ in got] == frames
    assert [n for _, n in got] == [4 + len(f) for f in frames]
    assert reader.pending == 0
    reader.close()


def test_frame_reader_byte_by_byte():
    frames = [b"", b"x", bytes(range(256)) * 3, b"last"]
    reader = FrameReader()
    got = []
    for byte in b"".join(length_prefixed(f) for f in frames):
        got += reader.feed(bytes([byte]))
    assert got == frames


def test_cut_off_stream_is_truncated_at_close():
    reader = FrameReader()
    assert reader.feed(length_prefixed(b"hello")[:-1]) == []
    assert reader.pending == 8
    with pytest.raises(TruncatedFrame, match="8 bytes pending"):
        reader.close()


@pytest.mark.parametrize("length", [MAX_FRAME_BYTES + 1, 2**31, 2**32 - 1])
def test_oversized_length_is_refused_without_allocating(length):
    reader = FrameReader()
    good = length_prefixed(b"before")
    tail = bytes(64 * 1024)  # bytes that would be the frame's body
    data = good + length.to_bytes(4, "big") + tail
    rejected = []
    reader.on_reject = lambda exc, n: rejected.append((exc.reason, n))
    # Only the feed is measured: pytest.raises(match=...) inside the window
    # would count its own regex compilation and bookkeeping.
    caught = None
    tracemalloc.start()
    try:
        try:
            reader.feed(data)
        except OversizedFrame as exc:
            caught = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught is not None and "cannot be resynchronised" in str(caught)
    assert peak < 16 * 1024          # nothing like the declared length, nor even the tail
    assert [f for f, _ in caught.frames] == [b"before"]
    assert rejected == [("oversized", 4 + len(tail))]
    assert reader.pending == 0
    with pytest.raises(StreamBroken):
        reader.feed(b"more")


def test_oversized_length_split_across_pieces_is_caught_on_its_fourth_byte():
    reader = FrameReader(max_frame=100)
    assert reader.feed(b"\x00\x00") == []
    with pytest.raises(OversizedFrame):
        reader.feed(b"\x00\x65")      # 101
    assert reader.broken is not None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(0, 1000), max_size=8))
def test_frame_reader_on_random_bytes(data, cuts):
    reader = FrameReader(max_frame=128)
    try:
        for piece in splits(data, cuts):
            for frame in reader.feed(piece):
                assert len(frame) <= 128
            assert reader.pending <= 128 + 3
    except (OversizedFrame, StreamBroken):
        pass


# -- COBS --------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=1200),
                 st.lists(st.sampled_from([b"\x00", b"\x01", b"\xff" * 253, b"\x07" * 254]),
                          max_size=8).map(b"".join)))
def test_cobs_round_trip(data):
    enc = cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= cobs_max_encoded(len(data))
    assert cobs_decode(enc) == data


def test_cobs_known_vectors():
    assert cobs_encode(b"") == b"\x01"
    assert cobs_encode(b"\x00") == b"\x01\x01"
    assert cobs_encode(b"\x11\x22\x00\x33") == b"\x03\x11\x22\x02\x33"
    assert cobs_encode(b"\x01" * 254) == b"\xff" + b"\x01" * 254 + b"\x01"


@pytest.mark.parametrize("bad", [b"", b"\x00", b"\x05\x01", b"\x03\x01\x00"])
def test_cobs_rejects_invalid_packets(bad):
    with pytest.raises(Garbage):
        cobs_decode(bad)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_cobs_decode_on_random_bytes(data):
    try:
        out = cobs_decode(data)
    except Garbage:
        return
    assert cobs_decode(cobs_encode(out)) == out


# -- serial ------------------------------------------------------------------------

def test_serial_packet_layout():
    packet = b"\x10\x00\x20"
    wire = serial_encode(packet)
    assert wire.endswith(b"\x00") and 0 not in wire[:-1]
    assert cobs_decode(wire[:-1]) == packet + zlib.crc32(packet).to_bytes(4, "big")
    assert serial_decode(wire) == packet
    bad = bytearray(wire)
    bad[1] ^= 0x40
    with pytest.raises((BadChecksum, Garbage)):
        serial_decode(bytes(bad))


@settings(max_examples=150, deadline=None)
@given(frames_st, st.lists(st.integers(0, 10**6), max_size=20), st.binary(max_size=40))
def test_serial_reader_in_random_pieces_with_leading_garbage(packets, cuts, garbage):
    stream = garbage + b"\x00" + b"".join(serial_encode(p) for p in packets)
    reader = SerialReader()
    got = []
    for piece in splits(stream, cuts):
        got += reader.feed_sized(piece)
    assert [p for p, _ in got] == packets
    assert [n for _, n in got] == [len(serial_encode(p)) for p in packets]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=10), st.data())
def test_serial_corruption_is_never_delivered(packets, data):
    """Flip, drop and insert bytes: what comes out is an in-order subset of what went in."""
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    wire = bytearray(b"".join(serial_encode(p) for p in packets))
    for _ in range(data.draw(st.integers(1, 6))):
        i = rng.randrange(len(wire))
        op = rng.choice(["flip", "drop", "insert", "zero"])
        if op == "flip":
            wire[i] ^= 1 << rng.randrange(8)
        elif op == "drop":
            del wire[i]
        elif op == "insert":
            wire.insert(i, rng.randrange(256))
        else:
            wire[i] = 0
    reader = SerialReader()
    got = reader.feed(bytes(wire)) + reader.feed(b"\x00")
    it = iter(packets)
    assert all(any(g == p for p in it) for g in got)  # an ordered subsequence
    assert len(got) + sum(reader.rejections.values()) >= 1


def test_serial_reader_counts_bad_crc_and_garbage():
    reader = SerialReader()
    good = serial_encode(b"payload")
    bad_crc = bytearray(good)
    bad_crc[3] ^= 0x01
    short = cobs_encode(b"ab") + b"\x00"          # too short for a CRC
    broken = b"\x09\x01\x02\x00"                   # COBS run past the end
    got = reader.feed(bytes(bad_crc) + short + broken + b"\x00\x00" + good)
    assert got == [b"payload"]
    assert reader.rejections == {"bad_crc": 1, "garbage": 2}
    assert reader.idle_bytes == 2


def test_serial_reader_drops_oversized_pieces_without_buffering():
    reader = SerialReader(max_packet=64)
    seen = []
    reader.on_reject = lambda exc, n: seen.append((exc.reason, n))
    junk = b"\x01" * 10_000
    for i in range(0, len(junk), 1000):
        assert reader.feed(junk[i:i + 1000]) == []
        assert reader.pending <= reader.max_encoded
    assert reader.feed(b"\x00" + serial_encode(b"ok")) == [b"ok"]
    assert seen == [("oversized", 10_001)]
