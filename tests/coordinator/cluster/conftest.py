"""The Ray tests' shared fixture: one local Ray of 2 CPUs per test module that asks for it."""
import pytest
from local_ray import start_local_ray


@pytest.fixture(scope="module")
def ray():
    """`ray`, connected to a local Ray of 2 CPUs started for this module (the test skips without Ray)."""
    ray = start_local_ray(num_cpus=2)
    yield ray
    ray.shutdown()
