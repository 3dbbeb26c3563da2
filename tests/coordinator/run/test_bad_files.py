"""Bad files and values are refused with one line naming the file and the field (issue 11, item 6)."""
import io
import json
import zipfile

import numpy as np
import pytest
from small_runs import small_config

from fedzo.cli import main
from fedzo.coordinator.run.folder import CHECKPOINT, RunFolder
from fedzo.coordinator.run.lifecycle import Run
from fedzo.edge.learning.algorithm import ACTOR_DIR
from fedzo.edge.learning.config import ConfigError, RunConfig
from fedzo.edge.policy.mlp import Actor


def _npy_claiming(shape, descr="<f4") -> bytes:
    """A .npy header that claims `shape`, followed by almost no data."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 16


def _rewrite_member(src, dst, name, data: bytes):
    """Copy the .npz archive src to dst with member `name` replaced by raw bytes."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            zout.writestr(item, data if item == name + ".npy" else zin.read(item))


@pytest.fixture
def checkpoint(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.save_checkpoint(np.arange(100, dtype=np.int16), 12, 3, {"episodes": 5})
    return folder


def test_a_good_checkpoint_loads(checkpoint):
    loaded = checkpoint.load_checkpoint()
    assert loaded["next_round"] == 3 and loaded["frac_bits"] == 12 and loaded["values"].size == 100


@pytest.mark.parametrize("cut", [0.5, 0.97])
def test_a_truncated_checkpoint_is_refused_naming_the_file(checkpoint, cut):
    path = checkpoint.path / CHECKPOINT
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * cut)])              # EOFError / BadZipFile before
    with pytest.raises(ValueError, match=f"{path}.*(not a readable|field)") as info:
        checkpoint.load_checkpoint()
    assert "\n" not in str(info.value)


def test_a_checkpoint_claiming_a_huge_theta_is_refused_unread(checkpoint, tmp_path):
    path = checkpoint.path / CHECKPOINT
    _rewrite_member(path, tmp_path / "x.npz", "values", _npy_claiming((1 << 30,), "<i2"))
    (tmp_path / "x.npz").replace(path)
    with pytest.raises(ValueError, match="field 'values'.*more than"):
        checkpoint.load_checkpoint()


def test_a_checkpoint_with_a_bad_field_names_it(checkpoint, tmp_path):
    path = checkpoint.path / CHECKPOINT
    np.savez(tmp_path / "y.npz", values=np.zeros(4, np.float32), frac_bits=3, next_round=0, totals="{}")
    (tmp_path / "y.npz").replace(path)
    with pytest.raises(ValueError, match="field 'values'.*int16 or int32"):
        checkpoint.load_checkpoint()
    np.savez(path, values=np.zeros(4, np.int16), frac_bits=3, next_round=-1, totals="{}")
    with pytest.raises(ValueError, match="field 'next_round'"):
        checkpoint.load_checkpoint()


def test_a_corrupt_actor_zip_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "actor.npz"
    data = bytearray((ACTOR_DIR / "hopper.npz").read_bytes())
    path.write_bytes(bytes(data[: len(data) // 2]))              # BadZipFile before
    with pytest.raises(ValueError, match=f"{path} is not a fedzo actor file"):
        Actor.load(path)


def test_a_huge_actor_is_refused_before_it_is_loaded(tmp_path):
    path = tmp_path / "huge.npz"
    _rewrite_member(ACTOR_DIR / "hopper.npz", path, "theta", _npy_claiming((200_000_000,)))
    # Before, theta was read whole (800 MB) and then its size compared.
    with pytest.raises(ValueError, match="field 'theta'.*more than"):
        Actor.load(path)


def test_config_fields_are_bounded_by_what_the_wire_carries():
    for fields, words in ((dict(agents=70000), "agents must be at most 65535"),
                          (dict(alpha=float("inf")), "alpha must be a finite number"),
                          (dict(mu=float("nan")), "mu must be a finite number"),
                          (dict(rounds=2**32), "rounds must be at most"),
                          (dict(batch=2**40), "batch must be at most"),
                          (dict(actor="a" * 5000), "actor must be a path of at most")):
        with pytest.raises(ConfigError, match=words):
            RunConfig(**fields)
    RunConfig(agents=65535)                                        # the largest K a Welcome carries


@pytest.mark.parametrize("text, words", [
    ("[" * 100000 + "]" * 100000, "nested too deeply"),            # RecursionError before
    ('{"agents": 70000}', "agents must be at most 65535"),         # accepted before; overflowed Welcome
    ('{"alpha": Infinity}', "alpha must be a finite number"),      # before: an error without the field
    ('{"agents": 2', "Expecting"),
])
def test_a_bad_config_file_is_one_line_naming_the_file_and_field(tmp_path, capsys, text, words):
    path = tmp_path / "config.json"
    path.write_text(text)
    assert main(["simulate", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err and words in err
    assert not (tmp_path / "out").exists()


def test_a_damaged_run_folder_json_names_the_file(tmp_path):
    folder = RunFolder(tmp_path / "run")
    (folder.path / "config.json").write_text("[" * 100000)
    with pytest.raises(ValueError, match="config.json: JSON nested too deeply"):
        folder.read_json("config.json")
    (folder.path / "config.json").write_text(json.dumps({"a": 1})[:-1])
    with pytest.raises(ValueError, match="config.json: not valid JSON"):
        folder.read_json("config.json")


def test_a_checkpoint_of_another_size_than_the_run_is_refused(checkpoint):
    with pytest.raises(ValueError, match="field 'values' holds 100 parameters, this run's actor has 5123"):
        checkpoint.load_checkpoint(d=5123)
    assert checkpoint.load_checkpoint(d=100)["values"].size == 100
    with pytest.raises(ValueError, match="field 'values' holds 200 bytes, more than the 40 allowed"):
        checkpoint.load_checkpoint(d=10)                  # refused from its header, unread


def test_resuming_from_a_damaged_config_names_the_file(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.write_json("config.json", {"agents": 70000})
    with pytest.raises(ConfigError, match="config.json: agents must be at most 65535"):
        Run(small_config(), folder.path, resume=True, log=lambda *a: None)
