"""The compiled-model hash: do the agent and the coordinator simulate the same robot?

Both sides compile the task's MJCF themselves, so a run refuses to start when
their compiled models differ (the coordinator sends its hash in the Welcome).
The hash is an 8-byte BLAKE2b digest (personalisation `fedzo-model-v1`) over
every array and number of the MjModel in name order, and over the physics
options (`model.opt`):

- floating-point arrays count as float32: the compiler derives some values
  (inertias, bounding volumes) in float64, and two CPUs may round their last
  bits differently; a difference a float32 cannot show is no different robot;
- the asset file paths (and their offsets) are left out, so the same model
  read from another folder has the same hash; the visual settings, the
  compiler's statistics (model.vis, model.stat) and MuJoCo's own
  `signature` are left out as well;
- everything else counts: names, sizes, bodies, joints, geoms, actuators,
  sensors, custom numbers, the timestep and the integrator.

The set of arrays is MuJoCo's: two different MuJoCo versions may give
different hashes for one file, which then says what it should, that the two
sides' physics may differ.
"""
import hashlib

import mujoco
import numpy as np

MODEL_HASH_BYTES = 8
_PERSON = b"fedzo-model-v1"
# opt is hashed on its own, below; `signature` is MuJoCo's own checksum, whose inputs
# it does not document (everything it could cover is hashed here anyway)
_LEFT_OUT = ("paths", "vis", "stat", "opt", "signature")


def model_hash(model: mujoco.MjModel) -> bytes:
    """The 8-byte hash of a compiled model (see the module docstring)."""
    h = hashlib.blake2b(digest_size=MODEL_HASH_BYTES, person=_PERSON)
    _feed(h, model, lambda name: name in _LEFT_OUT or "pathadr" in name)
    h.update(b"\x00opt")
    _feed(h, model.opt, lambda name: False)
    return h.digest()


def _feed(h, obj, skip) -> None:
    """Every public array, number and byte string of obj, each named, in name order."""
    for name in sorted(a for a in dir(obj) if not a.startswith("_")):
        if skip(name):
            continue
        value = getattr(obj, name)
        if isinstance(value, np.ndarray):
            if value.dtype.kind == "f":
                value = value.astype("<f4")
            elif value.dtype.kind in "iub":
                value = value.astype("<i8")
            else:
                continue
            data = np.ascontiguousarray(value).tobytes() + repr(value.shape).encode()
        elif isinstance(value, (bool, int)):
            data = int(value).to_bytes(8, "little", signed=True)
        elif isinstance(value, float):
            data = np.float32(value).tobytes()
        elif isinstance(value, bytes):
            data = value
        else:
            continue                                  # methods and nested structs
        h.update(name.encode() + b"\x00" + len(data).to_bytes(8, "little") + data)
