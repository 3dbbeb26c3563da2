"""What a person is shown of an episode: the poses of the bodies the model draws.

A clip is, per frame, the world position and orientation (quaternion w, x,
y, z) of every drawable geom that moves, as float32, at about 30 frames a
second of simulated time: (frames, geoms, 7). A hopper episode of 1000 steps
(dt 0.008 s) is 250 frames of 4 geoms, 28 KB. It holds no reward or return:
the page that draws it cannot tell the person which batch scored better.

The scene is the rest of what the page needs, read from the task's MJCF
model: each drawn geom's shape and colour, and the pose of those that never
move (the floor). The page draws both from this alone.
"""
from dataclasses import dataclass

import mujoco
import numpy as np

FPS = 30.0                          # frames a person can watch
POSE_WIDTH = 7                      # x, y, z, qw, qx, qy, qz
TOP_VIEW_TASKS = ("swimmer",)       # swims in the x-y plane; the others move in x-z (a side view)

# MuJoCo's geom type codes, by the name the page knows them by.
GEOM_TYPES = {int(mujoco.mjtGeom.mjGEOM_PLANE): "plane", int(mujoco.mjtGeom.mjGEOM_SPHERE): "sphere",
              int(mujoco.mjtGeom.mjGEOM_CAPSULE): "capsule", int(mujoco.mjtGeom.mjGEOM_ELLIPSOID): "ellipsoid",
              int(mujoco.mjtGeom.mjGEOM_CYLINDER): "cylinder", int(mujoco.mjtGeom.mjGEOM_BOX): "box"}
VISIBLE_GROUPS = 3                  # MuJoCo's viewer shows geom groups 0-2 by default


@dataclass
class Clip:
    """One episode's poses: float32 (frames, moving geoms, 7), at `fps` frames per simulated second."""

    poses: np.ndarray
    fps: float
    steps: int

    @property
    def nbytes(self) -> int:
        return self.poses.nbytes


def drawn_geoms(model) -> list:
    """Indices of the geoms a person sees: a known shape, a visible group, not transparent."""
    return [g for g in range(model.ngeom)
            if int(model.geom_type[g]) in GEOM_TYPES and model.geom_group[g] < VISIBLE_GROUPS
            and model.geom_rgba[g, 3] > 0]


def frame_stride(dt: float, fps: float = FPS) -> int:
    """Env steps per recorded frame: the whole number that comes closest to `fps`."""
    return max(1, round(1.0 / (fps * dt)))


class ClipRecorder:
    """Records clips of one task's episodes (rollout.run_episode_recorded calls it)."""

    def __init__(self, task, fps: float = FPS):
        model, self.data = task.model, task.data
        self.task = task
        drawn = drawn_geoms(model)
        # Geoms of the world body never move: the scene carries their pose once.
        self.moving = np.array([g for g in drawn if model.geom_bodyid[g] != 0], dtype=np.intp)
        self.fixed = [g for g in drawn if model.geom_bodyid[g] == 0]
        self.stride = frame_stride(task.dt, fps)
        self.fps = 1.0 / (self.stride * task.dt)
        self.scene = describe_scene(task.name, model, self.moving, self.fixed, self.fps)
        self._frames = None          # this episode's frames, filled up to _count
        self._count = 0
        self._quat = np.empty(4)

    def begin(self) -> None:
        """A new episode: room for all its frames, and its first one (the reset state)."""
        # The first state, one frame every stride-th step up to the time limit, and the last.
        most = self.task.max_episode_steps // self.stride + 2
        self._frames = np.empty((most, len(self.moving), POSE_WIDTH), np.float32)
        self._count = 0
        self._record()

    def after_step(self, steps: int) -> None:
        if steps % self.stride == 0:
            self._record()

    def end(self, steps: int) -> Clip:
        """The episode is over after `steps` steps: its clip (the last state is always in it)."""
        if steps % self.stride:
            self._record()
        poses = self._frames[:self._count].copy()      # just the frames, not the room left over
        self._frames = None
        return Clip(poses, self.fps, steps)

    def _record(self) -> None:
        if self._count == len(self._frames):          # stepped past the time limit: make room
            self._frames = np.concatenate([self._frames, np.empty_like(self._frames)])
        data, quat = self.data, self._quat
        frame = self._frames[self._count]
        frame[:, :3] = data.geom_xpos[self.moving]
        for row, g in enumerate(self.moving):
            mujoco.mju_mat2Quat(quat, data.geom_xmat[g])
            frame[row, 3:] = quat
        self._count += 1


def describe_scene(task_name, model, moving, fixed, fps) -> dict:
    """The page's picture of the model: shapes, colours, the fixed geoms' poses, the view."""
    def geom(g):
        return {"type": GEOM_TYPES[int(model.geom_type[g])], "size": [float(x) for x in model.geom_size[g]],
                "rgba": [round(float(x), 3) for x in model.geom_rgba[g]]}
    # The world body sits at the origin unrotated, so a fixed geom's pose is its model pose.
    fixed_geoms = [{**geom(g), "pose": [float(x) for x in model.geom_pos[g]] + [float(x) for x in model.geom_quat[g]]}
                   for g in fixed]
    return {"task": task_name, "view": "top" if task_name in TOP_VIEW_TASKS else "side", "fps": fps,
            "moving": [geom(g) for g in moving], "fixed": fixed_geoms}
