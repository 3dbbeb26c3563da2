"""Clips: the poses a person is shown, recorded without changing the episode."""
import numpy as np
import pytest

from fedzo.edge.human.clips import ClipRecorder, frame_stride
from fedzo.edge.learning.algorithm import initial_store, load_actor
from fedzo.edge.learning.config import RunConfig
from fedzo.edge.policy.rollout import run_batch
from fedzo.edge.tasks import make


def _policy(name):
    config = RunConfig(task=name)
    actor = load_actor(config)
    task = make(name)
    policy = actor.policy(*task.model.actuator_ctrlrange.T)
    policy.refresh(initial_store(config, actor))
    return task, policy


@pytest.mark.parametrize("name", ["hopper", "swimmer"])
def test_recording_keeps_the_episode_and_gives_float32_poses_at_about_30_fps(name):
    task, policy = _policy(name)
    task.max_episode_steps = 120
    plain = run_batch(task, policy, [3, 4])
    recorder = ClipRecorder(task)
    recorded = run_batch(task, policy, [3, 4], recorder)
    np.testing.assert_array_equal(plain.returns, recorded.returns)   # the same episodes, bit for bit
    assert plain.clips is None and len(recorded.clips) == 2
    for clip in recorded.clips:
        frames = -(-clip.steps // recorder.stride) + 1            # the first state, every stride-th, the last
        assert clip.poses.dtype == np.float32 and clip.poses.shape == (frames, len(recorder.moving), 7)
        assert 20 <= clip.fps <= 32
        np.testing.assert_allclose(np.linalg.norm(clip.poses[:, :, 3:], axis=2), 1, atol=1e-5)
        assert np.ptp(clip.poses[:, :, 0]) > 0                     # the bodies move
    assert recorder.scene["view"] == ("top" if name == "swimmer" else "side")
    assert {g["type"] for g in recorder.scene["moving"]} == {"capsule"}


def test_the_frame_stride_comes_closest_to_30_fps():
    assert frame_stride(0.008) == 4 and frame_stride(0.05) == 1 and frame_stride(0.002) == 17
