"""Importing Ray and joining a cluster: a local one started on the spot, or one at an address."""
import contextlib
import os

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
        ray.init(num_cpus=cpus, include_dashboard=False)
    else:
        log(f"ray: joining the cluster at {address}")
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
    """CPUs the cluster has in all (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
