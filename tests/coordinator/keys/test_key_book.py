"""Issuing keys, the revocation list, and the key book's reload (which never stops a run)."""
import os
import signal
import stat

import pytest
from serving import free_port
from waiting import wait_until

from fedzo.cli import main
from fedzo.coordinator.keys.book import KeyBook, read_key_dir
from fedzo.coordinator.keys.issue import issue_keys
from fedzo.coordinator.keys.reload import Reloader
from fedzo.coordinator.keys.revocation import RevocationError, parse_revocation_text, read_revocation_file
from fedzo.edge.protocol.agentkeys import read_agent_key_file, write_agent_key_file
from fedzo.edge.protocol.keyfile import KeyFileError


def test_keys_writes_one_private_file_per_agent_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "keys"
    assert main(["coordinator", "keys", "--agents", "3", "--out", str(out)]) == 0
    keys = [read_agent_key_file(out / f"agent-{k}.key") for k in range(3)]
    assert [k.agent_id for k in keys] == [0, 1, 2] and len({k.secret for k in keys}) == 3
    assert all(stat.S_IMODE((out / f"agent-{k}.key").stat().st_mode) == 0o600 for k in range(3))
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert read_revocation_file(out / "revoked") == frozenset()
    capsys.readouterr()
    assert main(["coordinator", "keys", "--agents", "2", "--first", "2", "--out", str(out)]) == 2
    assert "already holds keys for 1 of these agents (agent-2.key)" in capsys.readouterr().err
    assert not (out / "agent-3.key").exists() and read_agent_key_file(out / "agent-2.key") == keys[2]
    assert main(["coordinator", "keys", "--agents", "2", "--first", "2", "--out", str(out), "--overwrite"]) == 0
    assert read_agent_key_file(out / "agent-2.key") != keys[2] and (out / "agent-3.key").exists()
    assert read_agent_key_file(out / "agent-0.key") == keys[0]


@pytest.mark.parametrize("argv, words", [
    (["--agents", "2"], "needs --agents N"),
    (["--agents", "0", "--out", "K"], "at least 1"),
    (["--agents", "2", "--out", "K", "--rounds", "3"], "not --rounds"),
    (["--agents", "2", "--out", "K", "--first", "-1"], "outside"),
])
def test_keys_refuses_bad_options(tmp_path, capsys, argv, words):
    argv = [str(tmp_path / a) if a == "K" else a for a in argv]
    assert main(["coordinator", "keys", *argv]) == 2
    assert words in capsys.readouterr().err


def test_the_revocation_list_takes_ids_and_comments_and_names_a_bad_line():
    text = "# lost boards\n3\n\n 17   # stolen on the 28th\n3\n"
    assert parse_revocation_text(text) == {3, 17}
    for bad, line in (("3\nfour\n", 2), ("1 2\n", 1), ("-1\n", 1), ("4294967295\n", 1), ("٣\n", 1)):
        with pytest.raises(RevocationError, match=f"F, line {line}: .* is not an agent id"):
            parse_revocation_text(bad, "F")


def test_a_huge_or_binary_revocation_file_is_refused(tmp_path):
    (tmp_path / "big").write_bytes(b"1\n" * (1 << 20))
    with pytest.raises(RevocationError, match="larger than"):
        read_revocation_file(tmp_path / "big")
    (tmp_path / "bin").write_bytes(b"\xff\xfe1\n")
    with pytest.raises(RevocationError, match="not UTF-8"):
        read_revocation_file(tmp_path / "bin")


def test_a_key_directory_with_a_misnamed_or_no_key_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(KeyFileError, match="holds no agent key"):
        read_key_dir(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        read_key_dir(tmp_path / "absent")
    issue_keys(tmp_path / "k", 2)
    os.rename(tmp_path / "k" / "agent-1.key", tmp_path / "k" / "agent-7.key")
    with pytest.raises(KeyFileError, match="holds the key of agent 1; its name must be agent-1.key"):
        read_key_dir(tmp_path / "k")


def test_a_malformed_revocation_file_at_start_stops_the_start(tmp_path):
    issue_keys(tmp_path, 2)
    (tmp_path / "revoked").write_text("1\nboard seven\n")
    with pytest.raises(RevocationError, match="line 2"):
        KeyBook(tmp_path)
    with pytest.raises(FileNotFoundError):
        KeyBook(tmp_path, tmp_path / "no-such-list")


def test_a_reload_revokes_and_a_malformed_or_missing_list_keeps_the_old_one(tmp_path):
    issue_keys(tmp_path, 3)
    lines = []
    book = KeyBook(tmp_path, log=lines.append)
    assert book.keyring.revoked == frozenset() and len(book.keyring) == 3
    (tmp_path / "revoked").write_text("1  # lost\n")
    assert book.reload() == {1} and book.keyring.is_revoked(1)
    assert "1 revoked (newly: [1]); ending the sessions of agents [1]" in lines[-1]
    (tmp_path / "revoked").write_text("1\n2x\n")                 # a typo: the old list stays
    assert book.reload() == set() and book.keyring.revoked == {1}
    assert "keys not reloaded, the previous ones stay in force" in lines[-1] and "line 2" in lines[-1]
    os.remove(tmp_path / "revoked")                               # deleted: nobody is un-revoked
    assert book.reload() == set() and book.keyring.revoked == {1}
    assert "is gone; 1 agents stay revoked" in lines[-1]
    (tmp_path / "revoked").write_text("")
    assert book.reload() == set() and book.keyring.revoked == frozenset()
    assert (book.reloads, book.failed_reloads) == (2, 2)


def test_a_reload_ends_the_sessions_of_rekeyed_agents_and_keeps_old_keys_on_a_bad_file(tmp_path):
    issue_keys(tmp_path, 2)
    book = KeyBook(tmp_path, log=lambda *a: None)
    old = book.keyring.root(0)
    write_agent_key_file(tmp_path / "agent-0.key", 0, overwrite=True)
    assert book.reload() == {0} and book.keyring.root(0) != old
    current = book.keyring.root(0)
    os.chmod(tmp_path / "agent-1.key", 0o644)                    # unfit: nothing changes
    write_agent_key_file(tmp_path / "agent-0.key", 0, overwrite=True)
    assert book.reload() == set() and book.keyring.root(0) == current
    assert book.failed_reloads == 1


def test_sighup_asks_the_reloader_for_a_reload(tmp_path):
    """The wiring: a real SIGHUP to this process sets the flag that the serving loop polls."""
    reloader = Reloader(book=None, runtime=None, send=None)
    before = signal.getsignal(signal.SIGHUP)
    try:
        assert reloader.install()
        os.kill(os.getpid(), signal.SIGHUP)
        wait_until(lambda: reloader.requested, "the SIGHUP handler")
    finally:
        signal.signal(signal.SIGHUP, before)


def test_a_coordinator_with_a_bad_revocation_list_does_not_start_and_leaves_nothing(tmp_path, capsys):
    keys = tmp_path / "keys"
    issue_keys(keys, 2)
    (keys / "revoked").write_text("1\n1,2\n")
    out = tmp_path / "run"
    assert main(["coordinator", "--agent-keys", str(keys), "--listen", f"127.0.0.1:{free_port()}", "--out", str(out),
                 "--agents", "2"]) == 2
    err = capsys.readouterr().err
    assert f"{keys / 'revoked'}, line 2: '1,2' is not an agent id" in err
    assert not out.exists()
    assert main(["coordinator", "--revoked", str(keys / "revoked"), "--out", str(out)]) == 2
    assert "--revoked goes with --agent-keys" in capsys.readouterr().err
