"""A resumed run is the run (issue 12, item 1): address, key, options and files come from its folder."""
import json
import shutil

import numpy as np
import pytest
from serving import coordinator_with_agents, free_port
from small_runs import KEY, run_small, small_config

from fedzo.cli import main
from fedzo.coordinator.run.folder import CHECKPOINT, METRICS, RUN_RECORD, SUMMARY, RunFolder
from fedzo.coordinator.run.lifecycle import Run
from fedzo.edge.protocol.keyfile import write_key_file

QUIET = dict(log=lambda *a: None)
CONFIG = small_config(agents=2, rounds=2)
RUN_ARGS = [f"--{k.replace('_', '-')}={v}" for k, v in CONFIG.to_dict().items() if k != "actor"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A 2-round run served by `fedzo coordinator --listen 127.0.0.1:PORT --key-file F`."""
    base = tmp_path_factory.mktemp("resume")
    key_file = base / "lab.key"
    write_key_file(key_file, KEY)
    port = free_port()
    out = base / "run"
    assert coordinator_with_agents(["--listen", f"127.0.0.1:{port}", "--key-file", str(key_file),
                                    "--out", str(out), *RUN_ARGS], port) == 0
    return out, port, key_file


@pytest.fixture
def copy(finished, tmp_path):
    out, port, key_file = finished
    shutil.copytree(out, tmp_path / "run")
    return tmp_path / "run", port, key_file


def test_resume_takes_the_address_and_key_from_the_folder_and_rounds_extend_it(copy):
    # Before: it listened on 0.0.0.0:7700, made a new random run.key and ignored --rounds.
    out, port, _ = copy
    assert coordinator_with_agents(["--resume", str(out), "--rounds", "3"], port) == 0
    summary = json.loads((out / SUMMARY).read_text())
    assert summary["rounds"] == 3
    assert json.loads((out / "config.json").read_text())["rounds"] == 3
    assert [json.loads(line)["round"] for line in (out / METRICS).read_text().splitlines()] == [0, 1, 2]
    assert not (out / "run.key").exists()


def test_a_finished_run_says_so_and_exits(copy, capsys):
    out, _, _ = copy
    (out / SUMMARY).unlink()                        # killed after its last checkpoint
    assert main(["coordinator", "--resume", str(out)]) == 0     # before: waited for agents forever
    assert "is finished (2 rounds" in capsys.readouterr().out
    assert json.loads((out / SUMMARY).read_text())["rounds"] == 2


@pytest.mark.parametrize("extra, words", [
    (["--listen", "127.0.0.1:1"], "--listen 127.0.0.1:1 differs from the run's"),
    (["--alpha", "0.5"], "--alpha 0.5 differs from the run's 0.002"),
    (["--rounds", "1"], "can be extended, not shortened"),
    (["--round-timeout", "5"], "--round-timeout 5.0 differs"),
    (["--out", "elsewhere"], "--out names another folder"),
])
def test_options_given_again_must_agree(copy, capsys, extra, words):
    out, _, _ = copy
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["coordinator", "--resume", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_missing_or_other_key_refuses_to_resume(copy, capsys, tmp_path):
    out, _, key_file = copy
    record = json.loads((out / RUN_RECORD).read_text())
    record["key_file"] = str(tmp_path / "gone.key")
    (out / RUN_RECORD).write_text(json.dumps(record))
    assert main(["coordinator", "--resume", str(out)]) == 2    # before: a new random key, silently
    assert "gone.key is missing" in capsys.readouterr().err
    assert not (tmp_path / "gone.key").exists() and not (out / "run.key").exists()
    other = tmp_path / "other.key"
    write_key_file(other)
    assert main(["coordinator", "--resume", str(out), "--key-file", str(other)]) == 2
    assert "does not hold the key this run was started with" in capsys.readouterr().err


def test_resume_of_a_missing_folder_leaves_nothing(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert main(["coordinator", "--resume", str(missing)]) == 2
    assert f"no run to resume at {missing}" in capsys.readouterr().err
    assert not missing.exists()                       # before: an empty folder was left
    with pytest.raises(FileNotFoundError):
        Run(small_config(), missing, resume=True, **QUIET)
    assert not missing.exists()


def test_a_folder_without_run_json_needs_an_address(tmp_path, capsys):
    run_small(tmp_path, "old", rounds=2)                     # an in-process run: no run.json
    assert main(["coordinator", "--resume", str(tmp_path / "old")]) == 2
    assert "give --listen or --serial" in capsys.readouterr().err


def test_a_torn_last_metrics_line_is_cut_and_logged(tmp_path):
    run_small(tmp_path, "r", rounds=2)
    path = tmp_path / "r" / METRICS
    with open(path, "a") as f:
        f.write('{"round": 2, "vot')                        # a write cut short
    logs = []
    Run(small_config(rounds=2), tmp_path / "r", resume=True, log=logs.append)   # before: JSONDecodeError
    assert any(str(path) in line and "torn last line" in line for line in logs)
    assert [json.loads(line)["round"] for line in path.read_text().splitlines()] == [0, 1]
    path.write_text('{"round": 0}\n{"rou\n{"round": 1}\n')    # damage inside the file is an error
    with pytest.raises(ValueError, match=f"{path}: line 2 is damaged"):
        RunFolder(tmp_path / "r").metrics()


def test_a_checkpoint_that_does_not_fit_the_run_is_refused(tmp_path):
    run_small(tmp_path, "r", rounds=2)
    folder = RunFolder(tmp_path / "r")
    saved = folder.load_checkpoint()
    for edit, words in ((dict(next_round=7), "next_round 7 is past the run's 2 rounds"),
                        (dict(frac_bits=saved["frac_bits"] - 1), "frac_bits"),
                        (dict(values=saved["values"].astype(np.int32)), "theta is int32, the run stores int16")):
        fields = {k: saved[k] for k in ("values", "frac_bits", "next_round")} | edit
        folder.save_checkpoint(fields["values"], fields["frac_bits"], fields["next_round"], saved["totals"])
        with pytest.raises(ValueError, match=f"{CHECKPOINT}: .*{words}"):
            Run(small_config(rounds=2), folder.path, resume=True, **QUIET)


def write_old_checkpoint(folder, saved, totals):
    """A checkpoint as written before the byte table: no agent_bytes member."""
    np.savez(folder.path / CHECKPOINT, values=saved["values"], frac_bits=saved["frac_bits"],
             next_round=saved["next_round"], totals=json.dumps(totals))


def test_per_agent_bytes_carry_over_a_resume_in_either_checkpoint_form(tmp_path):
    """The checkpoint keeps each agent's byte totals as a table; a checkpoint written before
    that (the totals' JSON held them) resumes with the same totals."""
    run_small(tmp_path, "r", rounds=2)
    folder = RunFolder(tmp_path / "r")
    saved = folder.load_checkpoint()
    table = saved["agent_bytes"]
    assert table.shape == (3, 6) and (table[:, 0] > 0).all() and (table[:, 2] >= table[:, 0]).all()
    old_form = {str(a): {d: dict(zip(("frame_bytes", "payload_bits", "wire_bytes"), map(int, table[a, 3 * i:3 * i + 3])))
                         for i, d in enumerate(("up", "down"))} for a in range(3)}
    for old in (False, True):
        if old:
            write_old_checkpoint(folder, saved, {**saved["totals"], "agent_bytes": old_form})
        else:
            folder.save_checkpoint(saved["values"], saved["frac_bits"], saved["next_round"], saved["totals"], table)
        run = Run(small_config(rounds=2), folder.path, resume=True, **QUIET)
        np.testing.assert_array_equal(run.bytes_before, table)
        assert run.agent_bytes()["1"]["down"]["frame_bytes"] == table[1, 3]     # no link has counted yet
        run.recorder.close()


def test_a_byte_table_of_the_wrong_shape_is_refused(tmp_path):
    run_small(tmp_path, "r", rounds=2)
    folder = RunFolder(tmp_path / "r")
    saved = folder.load_checkpoint()
    args = (saved["values"], saved["frac_bits"], saved["next_round"], saved["totals"])
    folder.save_checkpoint(*args, np.zeros((3, 5), np.int64))
    with pytest.raises(ValueError, match="field 'agent_bytes' must be an int64 table of 6 columns"):
        folder.load_checkpoint()
    folder.save_checkpoint(*args, np.zeros((4, 6), np.int64))
    with pytest.raises(ValueError, match=f"{CHECKPOINT}: agent_bytes has 4 rows, the run has 3 agents"):
        Run(small_config(rounds=2), folder.path, resume=True, **QUIET)
    write_old_checkpoint(folder, saved, {**saved["totals"], "agent_bytes": {"0": {"up": 5}}})
    with pytest.raises(ValueError, match="unreadable agent_bytes entry"):
        folder.load_checkpoint()
