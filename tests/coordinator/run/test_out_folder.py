"""No run folder is overwritten, a failed command leaves nothing, a full disk is one line (issue 12, item 2)."""
import errno
import json
import os
import socket

import pytest
from serving import coordinator_with_agents, free_port
from small_runs import KEY, run_small, small_config

from fedzo.cli import main
from fedzo.coordinator.run.folder import CHECKPOINT, METRICS, SUMMARY
from fedzo.edge.protocol.keyfile import write_key_file

CONFIG = small_config(agents=2, rounds=3)
RUN_ARGS = [f"--{k.replace('_', '-')}={v}" for k, v in CONFIG.to_dict().items() if k != "actor"]


@pytest.fixture
def old_run(tmp_path):
    """A finished run's folder, with a plot and a file of the user's."""
    run_small(tmp_path, "old", rounds=2)
    (tmp_path / "old" / "run-hopper-return-vs-rounds.png").write_bytes(b"png")
    (tmp_path / "old" / "notes.txt").write_text("mine")
    return tmp_path / "old"


@pytest.mark.parametrize("command", ["coordinator", "simulate"])
def test_out_on_an_existing_run_is_refused(old_run, capsys, command):
    # Before: metrics.jsonl was truncated and config.json rewritten beside the old summary.
    before = {p.name: p.read_bytes() for p in old_run.iterdir()}
    assert main([command, "--out", str(old_run), "--link" if command == "simulate" else "--listen",
                 "inproc" if command == "simulate" else f"127.0.0.1:{free_port()}", *RUN_ARGS]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out {old_run} already holds a run" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in old_run.iterdir()} == before


def test_overwrite_replaces_the_run_and_keeps_other_files(old_run):
    assert main(["simulate", "--link", "inproc", "--quiet", "--overwrite", "--out", str(old_run),
                 *RUN_ARGS]) == 0
    assert json.loads((old_run / SUMMARY).read_text())["rounds"] == 3
    assert len((old_run / METRICS).read_text().splitlines()) == 3
    assert (old_run / "notes.txt").read_text() == "mine"


def test_a_coordinator_that_cannot_bind_leaves_nothing(tmp_path, capsys):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        out = tmp_path / "runs" / "lab"
        assert main(["coordinator", "--listen", f"127.0.0.1:{port}", "--key-file", str(tmp_path / "new.key"),
                     "--out", str(out), *RUN_ARGS]) == 2
    assert "Address already in use" in capsys.readouterr().err
    # Before: runs/lab/ kept config.json, metrics.jsonl and the new key.
    assert not (tmp_path / "runs").exists() and not (tmp_path / "new.key").exists()


def test_a_full_disk_is_one_line_and_the_folder_resumes(tmp_path, capsys, monkeypatch):
    _, _, whole = run_small(tmp_path, "whole", agents=2, rounds=3)
    key_file = tmp_path / "lab.key"
    write_key_file(key_file, KEY)
    port, out = free_port(), tmp_path / "lab"
    real_fsync, checkpoints = os.fsync, []

    def full_at_the_second_checkpoint(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(CHECKPOINT + ".tmp"):
            checkpoints.append(fd)
            if len(checkpoints) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_at_the_second_checkpoint)
    assert coordinator_with_agents(["--listen", f"127.0.0.1:{port}", "--key-file", str(key_file),
                                    "--out", str(out), *RUN_ARGS], port) == 1      # before: a traceback
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and str(out / CHECKPOINT) in err
    assert f"--resume {out}" in err and not (out / (CHECKPOINT + ".tmp")).exists()
    monkeypatch.setattr(os, "fsync", real_fsync)
    # The agents started above are still retrying; they join the resumed run.
    assert coordinator_with_agents(["--resume", str(out)], port, agents=0) == 0
    assert json.loads((out / SUMMARY).read_text())["theta_hash"] == whole["theta_hash"]
    assert [json.loads(line)["round"] for line in (out / METRICS).read_text().splitlines()] == [0, 1, 2]
