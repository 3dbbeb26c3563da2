"""A user's own task: the three ways to bring one, the interface check, and one-line errors."""
import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fedzo.edge.learning.config import ConfigError, RunConfig
from fedzo.edge.tasks import make
from fedzo.edge.tasks.interface import TaskError
from fedzo.edge.tasks.model_hash import model_hash
from fedzo.edge.tasks.plugins import agent_spec, file_label, spec_kind, task_name

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "cartpole"
XML = EXAMPLE / "cartpole.xml"


def copy_example(folder: Path, **description_changes) -> Path:
    """The example's model and description in `folder`, the description changed as given."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(XML, folder / "cartpole.xml")
    description = json.loads((EXAMPLE / "cartpole.task.json").read_text())
    description.update(description_changes)
    (folder / "cartpole.task.json").write_text(json.dumps(description))
    return folder / "cartpole.xml"


def test_specs_are_told_apart_by_their_text():
    assert [spec_kind(s) for s in ("hopper", "a.b:C", "pkg:Outer.Inner", "my-task", "robots/arm.XML")] == \
        ["built-in", "class", "class", "entry point", "mjcf"]
    for bad in ("", "a b", "a:b:c", ":C", "x" * 1025):
        with pytest.raises(ValueError):
            spec_kind(bad)
        with pytest.raises(ConfigError, match="^task must be a built-in task"):
            RunConfig(task=bad)
    assert [file_label(s) for s in ("hopper", "a.b:C", "x/y/arm.xml")] == ["hopper", "a.b_C", "arm"]


def test_an_mjcf_task_keeps_the_interface_and_its_description():
    task = make(str(XML))
    assert (task.name, task.obs_dim, task.act_dim, task.max_episode_steps) == ("cartpole", 4, 1, 500)
    assert task.dt == pytest.approx(0.02) and task_name(str(XML)) == "cartpole"
    first = task.reset(5).copy()
    assert np.array_equal(task.reset(5), first) and not np.array_equal(task.reset(6), first)
    task.reset(5)
    action = np.array([0.3])
    obs, reward, terminated, truncated = task.step(action)
    x, angle = task.data.qpos
    # the rule, by hand, on the state the step ended in (sensors are refreshed after the step)
    assert reward == pytest.approx(1.0 + np.cos(angle) - 0.1 * x * x - 0.01 * 0.09, rel=0, abs=1e-12)
    assert np.array_equal(obs, np.concatenate([task.data.qpos, task.data.qvel]))
    assert not terminated and not truncated
    task.data.qpos[1] = 0.6                                  # past the pole's limit of 0.5
    assert task.step(np.zeros(1))[2] is True


def test_the_episode_is_cut_at_the_time_limit(tmp_path):
    task = make(str(copy_example(tmp_path, max_episode_steps=3, terminate=[])))
    task.reset(0)
    assert [task.step(np.zeros(1))[3] for _ in range(3)] == [False, False, True]


@pytest.mark.parametrize("change, message", [
    ({"frame_skip": 0}, "cartpole.task.json: frame_skip must be a whole number from 1"),
    ({"reward": [{"sensor": "pole_angle", "weight": "1"}]}, "reward[0].weight must be a finite number"),
    ({"reward": [{"sensor": "pole_angle", "use": "sin", "weight": 1}]}, "reward[0].use must be one of"),
    ({"reward": [{"alive": True, "control": "sum_of_squares", "weight": 1}]}, "reward[0] must have exactly one"),
    ({"terminate": [{"sensor": "pole_angle", "outside": [1, -1]}]}, "terminate[0].outside must have low < high"),
    ({"rewards": []}, "rewards is not a field of a task description"),
    ({"reward": [{"sensor": "no_such", "weight": 1}]}, "no sensor named 'no_such' in the model"),
    ({"observation": ["qpos", "elbow"]}, "no sensor named 'elbow' in the model"),
])
def test_a_bad_description_is_one_line_naming_the_file_and_the_field(tmp_path, change, message):
    with pytest.raises(TaskError) as caught:
        make(str(copy_example(tmp_path, **change)))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_missing_files_and_a_broken_model_are_one_line(tmp_path):
    with pytest.raises(TaskError, match="^no MJCF file at .*nothing.xml$"):
        make(str(tmp_path / "nothing.xml"))
    xml = copy_example(tmp_path / "a")
    (tmp_path / "a" / "cartpole.task.json").unlink()
    with pytest.raises(TaskError, match="no task description .*cartpole.task.json beside it"):
        make(str(xml))
    xml = copy_example(tmp_path / "b")
    xml.write_text(xml.read_text().replace("<actuator>", "<actuator><motor joint='nope'/>"))
    with pytest.raises(TaskError) as caught:
        make(str(xml))
    assert str(caught.value).startswith(str(xml)) and "\n" not in str(caught.value)


def test_a_class_from_the_current_folder_and_its_interface_check(tmp_path, monkeypatch):
    (tmp_path / "my_robots.py").write_text(textwrap.dedent(f"""
        from fedzo.edge.tasks.mjcf import MJCFTask

        class Upright(MJCFTask):
            name = "upright"
            def __init__(self):
                super().__init__({str(XML)!r})
            def reward(self, action, terminated):
                return float(self.data.qpos[1] ** 2)

        class NoStep:
            name, model, data, obs_dim, act_dim, dt, max_episode_steps = "x", None, None, 1, 1, 0.1, 5
            def reset(self, seed): pass
            def observe(self): pass

        def broken():
            raise RuntimeError("no robot today\\nsecond line")
    """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    task = make("my_robots:Upright")
    assert task.name == task_name("my_robots:Upright") == "upright"
    task.reset(1)
    assert task.step(np.zeros(1))[1] == pytest.approx(task.data.qpos[1] ** 2)
    cases = {"my_robots:NoStep": "task my_robots:NoStep: NoStep lacks step (docs/tasks.md)",
             "my_robots:broken": "building it failed: RuntimeError: no robot today second line",
             "my_robots:Nope": "task my_robots:Nope: my_robots has no 'Nope'",
             "no_robots:X": "task no_robots:X: no module named 'no_robots'"}
    for spec, message in cases.items():
        with pytest.raises(TaskError) as caught:
            make(spec)
        assert message in str(caught.value) and "\n" not in str(caught.value), spec


def test_an_installed_entry_point_is_a_task_name(tmp_path, monkeypatch):
    (tmp_path / "cart_plugin.py").write_text(textwrap.dedent(f"""
        from fedzo.edge.tasks.mjcf import MJCFTask
        def cartpole():
            return MJCFTask({str(XML)!r})
    """))
    info = tmp_path / "cart_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cart-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[fedzo.tasks]\nmy-cartpole = cart_plugin:cartpole\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert make("my-cartpole").name == "cartpole"
    with pytest.raises(TaskError, match=r"unknown task 'my-cartpol': .*entry point \(.*my-cartpole"):
        make("my-cartpol")


def test_the_model_hash_follows_the_physics_not_the_folder(tmp_path):
    original = model_hash(make(str(XML)).model)
    assert model_hash(make(str(copy_example(tmp_path / "elsewhere"))).model) == original
    heavier = copy_example(tmp_path / "heavier")
    heavier.write_text(heavier.read_text().replace('gear="20"', 'gear="21"'))
    assert model_hash(make(str(heavier)).model) != original
    assert model_hash(make("hopper").model) != original


def test_an_agent_builds_a_module_or_a_file_only_on_its_own_word():
    assert agent_spec("hopper", None) == "hopper" and agent_spec("my-cartpole", None) == "my-cartpole"
    assert agent_spec("robots/arm.xml", "/opt/arm.xml") == "/opt/arm.xml"
    with pytest.raises(TaskError, match="is a Python class; an agent loads one only when started with --task"):
        agent_spec("os:system", None)
    with pytest.raises(TaskError, match="is an MJCF file; an agent loads one only when started with --task"):
        agent_spec("robots/arm.xml", None)
