"""TCP/IP header bytes of a connection, from the kernel's own segment counts (Linux).

DESIGN.md §6 reports TCP/IP headers separately from fedzo's frame bytes. The kernel
counts every segment a socket sent and received (`tcpi_segs_out`,
`tcpi_segs_in` of struct tcp_info, Linux 4.2+), pure ACKs included, which is
what a packet capture shows. Each segment carries an IP header (20 B IPv4,
40 B IPv6) and a TCP header (20 B, plus 12 B when the timestamp option was
negotiated, as Linux does by default). SACK blocks, sent only on lossy links,
are not counted.

The kernel also counts the segments that carried data (`tcpi_data_segs_out`,
`tcpi_data_segs_in`, Linux 4.6+); the rest are bare acknowledgements (and the
connection's SYN/FIN), which is how `fedzo bench link` tells them apart.
"""
import socket
import struct

_SEGS_OFFSET = 136          # tcpi_segs_out, tcpi_segs_in: two u32 after the u64 byte counters
_SEGS = struct.Struct("=II")
_DATA_SEGS_OFFSET = 152     # tcpi_data_segs_in, tcpi_data_segs_out (after notsent_bytes, min_rtt)
_OPTIONS_OFFSET = 5         # tcpi_options
_OPT_TIMESTAMPS = 1


def tcp_header_figures(sock) -> dict:
    """{"segments_out", "segments_in", "header_bytes_out", "header_bytes_in"}, or {}
    where the kernel does not report segment counts (not Linux, or too old); also
    "data_segments_out" and "data_segments_in" where the kernel counts them."""
    if not hasattr(socket, "TCP_INFO"):
        return {}
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    except OSError:
        return {}
    if len(raw) < _SEGS_OFFSET + _SEGS.size:
        return {}
    segments_out, segments_in = _SEGS.unpack_from(raw, _SEGS_OFFSET)
    ip = 40 if sock.family == socket.AF_INET6 else 20
    per_segment = ip + 20 + (12 if raw[_OPTIONS_OFFSET] & _OPT_TIMESTAMPS else 0)
    out = {"segments_out": segments_out, "segments_in": segments_in,
           "header_bytes_out": segments_out * per_segment, "header_bytes_in": segments_in * per_segment}
    if len(raw) >= _DATA_SEGS_OFFSET + _SEGS.size:
        data_in, data_out = _SEGS.unpack_from(raw, _DATA_SEGS_OFFSET)
        out.update(data_segments_out=data_out, data_segments_in=data_in)
    return out
