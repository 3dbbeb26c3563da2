"""Vectors in chunks: theta hash, Sync and FedAvg model chunking and reassembly."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_strategies import established_pair

from fedzo.edge.protocol import (
    HashMismatch,
    MalformedFrame,
    ModelDownload,
    ModelUpload,
    OversizedFrame,
    Sync,
    VectorAssembler,
    model_chunks,
    sync_chunks,
    theta_hash,
)
from fedzo.edge.protocol.constants import MAX_FRAME_BYTES, MIN_PEER_MAX_FRAME


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["int16", "int32"]), st.integers(0, 20000),
       st.integers(MIN_PEER_MAX_FRAME, MAX_FRAME_BYTES), st.integers(0, 2**32 - 1))
def test_sync_through_a_session_fits_and_reassembles(dtype, d, max_frame, seed):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    theta = rng.integers(info.min, info.max, size=d, endpoint=True, dtype=dtype)
    agent, coord = established_pair()
    coord.peer_max_frame = max_frame
    assembler = VectorAssembler(expected_total=d)
    result = None
    for chunk in sync_chunks(7, theta, 9, max_frame=max_frame):
        frame = coord.seal(chunk)
        assert len(frame) <= max_frame
        result = assembler.add(agent.open(frame))
    assert result is not None and result.dtype == theta.dtype
    assert np.array_equal(result, theta)
    assert not assembler.in_progress


@pytest.mark.parametrize("kind", [ModelUpload, ModelDownload])
def test_model_chunks_keep_float32_bits(kind):
    model = np.array([0.0, -0.0, np.inf, -1.5, 3e38] * 2000, dtype=np.float32)
    model[3] = np.frombuffer(b"\x01\x00\xc0\x7f", dtype="<f4")[0]   # a NaN payload
    chunks = model_chunks(kind, 2, model)
    assert len(chunks) == 3 and all(type(c) is kind for c in chunks)
    out = None
    assembler = VectorAssembler(expected_total=model.size)
    for c in chunks:
        out = assembler.add(type(c).decode_body(c.encode_body()))
    assert out.tobytes() == model.tobytes()


def test_model_chunks_for_the_reported_run():
    # K=5, d=5123: the FedAvg exchange is two frames each way
    chunks = model_chunks(ModelUpload, 1, np.zeros(5123, dtype=np.float32))
    assert [c.total for c in chunks] == [5123, 5123]
    assert sum(len(c.data) for c in chunks) == 4 * 5123


def test_hash_depends_on_values_scale_and_width_not_byte_order():
    t = np.arange(100, dtype=np.int16)
    h = theta_hash(t, 10)
    assert len(h) == 8
    assert theta_hash(t.astype(">i2"), 10) == h
    assert theta_hash(t, 11) != h
    assert theta_hash(t.astype(np.int32), 10) != h
    t2 = t.copy()
    t2[50] += 1
    assert theta_hash(t2, 10) != h
    with pytest.raises(ValueError):
        theta_hash(t.astype(np.float32), 10)


def test_tampered_sync_fails_its_hash():
    theta = np.arange(1000, dtype=np.int16)
    chunks = sync_chunks(1, theta, 8, max_frame=1024)
    last = chunks[-1]
    bad = Sync(last.round, last.total, last.offset, last.dtype, last.frac_bits, last.theta_hash,
               bytes([last.data[0] ^ 1]) + last.data[1:])
    assembler = VectorAssembler()
    for c in chunks[:-1]:
        assert assembler.add(c) is None
    with pytest.raises(HashMismatch):
        assembler.add(bad)


def test_assembler_refuses_gaps_mixes_and_wrong_sizes():
    theta = np.arange(1000, dtype=np.int16)
    chunks = sync_chunks(1, theta, 8, max_frame=1024)
    assembler = VectorAssembler(expected_total=1000)
    with pytest.raises(MalformedFrame, match="does not continue"):
        assembler.add(chunks[1])
    assembler.add(chunks[0])
    with pytest.raises(MalformedFrame):
        assembler.add(chunks[2])
    other = sync_chunks(2, theta, 8, max_frame=1024)
    with pytest.raises(MalformedFrame):
        assembler.add(other[1])              # another round's vector
    assembler.add(other[0])                  # offset 0 restarts cleanly
    for c in other[1:-1]:
        assembler.add(c)
    assert np.array_equal(assembler.add(other[-1]), theta)
    with pytest.raises(MalformedFrame, match="expected 1000"):
        VectorAssembler(expected_total=1000).add(sync_chunks(1, theta[:10], 8)[0])
    huge = Sync(1, 2**32 - 1, 0, "int16", 0, bytes(8), bytes(2))
    with pytest.raises(OversizedFrame):
        VectorAssembler().add(huge)          # refused before allocating 8 GB


def test_empty_vector():
    (chunk,) = sync_chunks(0, np.zeros(0, dtype=np.int16), 0)
    assert chunk.total == 0 and chunk.data == b""
    assert VectorAssembler().add(chunk).size == 0
