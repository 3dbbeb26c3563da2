"""Loading a task's MJCF model from the package's `models/` folder.

The XML files in `edge/tasks/models/` hold the physics of each task. One fact
cannot be stated in plain MJCF any more: MuJoCo has deprecated the compiler's
`settotalmass`, which HalfCheetah needs (its geoms' masses are scaled to a
14 kg total). Such a model carries the total as the custom number
`total_mass`, and `load_model` applies it the way MuJoCo recommends
(mj_setTotalmass, then mj_setConst), which reproduces the old compiler's
result bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import mujoco

MODELS_DIR = Path(__file__).resolve().parent / "models"


def model_path(name: str) -> Path:
    """Return the path of the MJCF file of task `name` (e.g. "hopper")."""
    return MODELS_DIR / f"{name}.xml"


def _custom_number(model: mujoco.MjModel, key: str) -> float | None:
    """The first value of the model's custom <numeric name=key>, or None."""
    nid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_NUMERIC, key)
    if nid < 0:
        return None
    return float(model.numeric_data[model.numeric_adr[nid]])


def load_model(name: str) -> tuple[mujoco.MjModel, mujoco.MjData]:
    """Compile task `name`'s model and allocate its data (see `load_model_file`)."""
    path = model_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"no model file for task {name!r}: {path}")
    return load_model_file(path)


def load_model_file(path) -> tuple[mujoco.MjModel, mujoco.MjData]:
    """Compile the MJCF file at `path` and allocate its data.

    Returns (model, data) with data in the model's reset state (qpos0, zero
    velocities). A custom number `total_mass` in the XML rescales all body
    masses and inertias to that total before the data is handed out.
    MuJoCo's own errors (a bad file) pass through as ValueError.
    """
    model = mujoco.MjModel.from_xml_path(str(path))
    data = mujoco.MjData(model)
    total_mass = _custom_number(model, "total_mass")
    if total_mass is not None:
        mujoco.mj_setTotalmass(model, total_mass)
        # mass-dependent constants (invweight0, acc0, ...) are stale until
        # recomputed; mj_setConst uses data as scratch, hence the reset after.
        mujoco.mj_setConst(model, data)
        mujoco.mj_resetData(model, data)
    return model, data
