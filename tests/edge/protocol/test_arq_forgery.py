"""A forged ARQ packet cannot make a genuine one vanish (issue 11, item 5).

One DATA packet with a valid CRC and the next sequence number, injected on
the line, used to be delivered in place of the genuine packet, which then
counted as a duplicate and was never sent again: the vote disappeared.
"""
import struct

from fedzo.edge.protocol.arq import CONFLICT_COPIES, DATA, ArqLink
from fedzo.edge.protocol.serialframe import SerialReader, serial_encode


def _epoch_on_the_line(data: bytes) -> int:
    """What an eavesdropper reads from the first packet it sees: the sender's epoch."""
    packet = SerialReader().feed(data)[0]
    return struct.unpack_from(">BHH", packet)[1]


def _forged(epoch: int, seq: int, payload: bytes) -> bytes:
    return serial_encode(struct.pack(">BHH", DATA, epoch, seq) + payload)


def test_a_forged_packet_with_the_next_seq_does_not_swallow_the_genuine_one():
    a, b = ArqLink(), ArqLink()
    a.send(b"join", 0.0)
    line = a.output()
    epoch = _epoch_on_the_line(line)
    assert b.feed(line, 0.0) == [b"join"]
    a.feed(b.output(), 0.0)                               # acknowledged
    assert b.feed(_forged(epoch, 1, b"forged"), 0.1) == [b"forged"]
    a.send(b"vote", 0.2)
    vote = a.output()
    assert b.feed(vote, 0.2) == [b"vote"]                 # before: dropped as a duplicate
    assert b.stats["conflicts"] == 1
    # The genuine packet sent again is a duplicate now, delivered once only.
    assert b.feed(vote, 0.3) == [] and b.stats["duplicates"] == 1


def test_conflicting_copies_per_seq_are_bounded():
    a, b = ArqLink(), ArqLink()
    a.send(b"first", 0.0)
    line = a.output()
    epoch = _epoch_on_the_line(line)
    b.feed(line, 0.0)
    delivered = [b.feed(_forged(epoch, 0, b"x%d" % i), 0.1) for i in range(3 * CONFLICT_COPIES)]
    assert sum(len(d) for d in delivered) == CONFLICT_COPIES - 1
