"""Importing Ray and joining a cluster: a local one started on the spot, or one at an address."""
import contextlib
import os
import socket

INSTALL_HINT = "install it with: pip install 'fedzo[ray]'  (or: pip install 'ray>=2.9')"


class RayUnavailable(RuntimeError):
    """Ray cannot be used: RayMissing or RayUnreachable."""


class RayMissing(RayUnavailable):
    """Ray is not installed (it is an optional extra)."""


class RayUnreachable(RayUnavailable):
    """No Ray cluster answers at the address given."""


def require_ray():
    """The `ray` module, or RayMissing saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise RayMissing(f"this needs Ray, which is not installed ({exc}); {INSTALL_HINT}") from exc
    return ray


@contextlib.contextmanager
def ray_session(address=None, num_cpus=None, log=print):
    """Yield `ray`, connected to the cluster at `address`, or to a local Ray started here
    with `num_cpus` CPUs (default: this machine's); a local Ray started here stops on exit.

    If this process is already connected (a test's fixture, a notebook), that connection is
    used as it is and left open.
    """
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    if address in (None, "", "local"):
        cpus = num_cpus or os.cpu_count() or 1
        log(f"ray: starting a local Ray with {cpus} CPUs")
        try:
            ray.init(num_cpus=cpus, include_dashboard=False)
        except Exception as exc:     # e.g. no room for its object store, or its ports taken
            raise RayUnavailable(f"a local Ray did not start: {type(exc).__name__}: {exc}") from exc
    else:
        log(f"ray: joining the cluster at {address}")
        _probe(address)
        try:
            ray.init(address=address)
        except (ConnectionError, RuntimeError) as exc:
            raise RayUnreachable(f"no Ray cluster at {address} ({exc}); start one with "
                                  f"`ray start --head` (docs/cluster.md)") from exc
    try:
        yield ray
    finally:
        ray.shutdown()


def cluster_cpus(ray) -> int:
    """CPUs the cluster has in all; RayUnavailable if none (no task could ever be placed)."""
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < 1:
        raise RayUnavailable("the Ray cluster offers no CPUs: add a node with `ray start --address HEAD:6379` "
                             "(a head started with --num-cpus=0 runs no work)")
    return cpus


PROBE_TIMEOUT = 10.0     # seconds to wait for a TCP connection to the cluster's address


def _probe(address: str):
    """RayUnreachable at once if nothing listens at host:port (ray.init would retry for minutes).

    "auto" (a cluster started on this machine) is left to Ray; "ray://host:port" is probed too.
    """
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if address == "auto" or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT).close()
    except OSError as exc:
        raise RayUnreachable(f"no Ray cluster answers at {address} ({exc}); start one with "
                             f"`ray start --head` on the head node (docs/cluster.md)") from None
