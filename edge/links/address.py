"""TCP addresses as a user writes them: 'HOST:PORT' (the agent's --connect, the coordinator's --listen)."""

DEFAULT_HOST = "127.0.0.1"    # ':PORT' alone means this machine


def parse_address(text: str) -> tuple:
    """'HOST:PORT' -> (host, port), with a clear error; '[::1]:PORT' gives '::1'."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or DEFAULT_HOST, int(port)
