"""The file pool (file_pool_size): a background thread keeps unnamed files (O_TMPFILE) ready in
mail_dir so a delivery need not wait for an inode allocation. Seen from outside through the
server's open descriptors: a pooled file is "<mail_dir>/#<inode> (deleted)" in /proc/PID/fd.
The pool refills when it is half empty, so with a pool of 4 one delivery leaves exactly 3."""
import os
import pwd
import subprocess
import time

import pytest

from test_journal import body_of, send


def pooled(srv):
    """How many unnamed files in mail_dir the server holds open."""
    prefix = str(srv.mail_dir) + "/#"
    n = 0
    for fd in os.listdir(f"/proc/{srv.proc.pid}/fd"):
        try:
            target = os.readlink(f"/proc/{srv.proc.pid}/fd/{fd}")
        except OSError:
            continue
        n += target.startswith(prefix) and target.endswith(" (deleted)")
    return n


def wait_pooled(srv, want, timeout=5):
    end = time.time() + timeout
    while time.time() < end and pooled(srv) != want:
        time.sleep(0.02)
    return pooled(srv)


def test_pool_fills_and_a_delivery_takes_one_file(make_server):
    srv = make_server(file_pool_size=4)
    assert wait_pooled(srv, 4) == 4
    send(srv, [body_of(1)])
    assert pooled(srv) == 3  # taken; above half full, so not yet refilled
    files = srv.maildir_files("alice@example.test")
    assert len(files) == 1 and "body of message 1" in files[0].read_text()
    send(srv, [body_of(2)], rcpts=("alice@example.test", "bob@example.test"))  # one file, two links
    assert wait_pooled(srv, 4) == 4  # half empty: refilled to the top
    for box in ("alice@example.test", "bob@example.test"):
        assert sum("body of message 2" in p.read_text() for p in srv.maildir_files(box)) == 1
    assert len(srv.maildir_files("alice@example.test")) == 2


def test_pool_off(make_server):
    srv = make_server(file_pool_size=0)
    send(srv, [body_of(1)])
    assert pooled(srv) == 0
    assert len(srv.maildir_files("alice@example.test")) == 1


def test_mailbox_on_another_file_system_does_not_use_the_pool(make_server, tmp_path):
    srv = make_server(file_pool_size=4)
    assert wait_pooled(srv, 4) == 4
    domain = srv.mail_dir / "example.test"
    domain.mkdir(exist_ok=True)
    uid = pwd.getpwnam("postern").pw_uid if os.geteuid() == 0 else os.geteuid()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=4m,mode=0700,uid={uid}", "tmpfs", str(domain)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + r.stderr.decode())
    try:
        send(srv, [body_of(1)])
        assert pooled(srv) == 4  # a pooled file could not be linked there: not taken
        files = srv.maildir_files("alice@example.test")
        assert len(files) == 1 and "body of message 1" in files[0].read_text()
        log = srv.log_text()  # the checkpoint flushes mail_dir's file system only: direct path
        assert "path=direct messages=1" in log and "path=journal" not in log
    finally:
        srv.stop()
        subprocess.run(["umount", "-l", str(domain)])


@pytest.mark.parametrize("pool,journal", [(4, "yes"), (0, "yes"), (4, "no"), (0, "no")])
def test_mailbox_removed_while_running_is_made_again(make_server, pool, journal):
    """The committer remembers mailboxes it has seen (no stat per delivery); one removed behind its
    back must be made again on the next delivery, not fail it."""
    srv = make_server(file_pool_size=pool, commit_journal=journal)
    send(srv, [body_of(1)])
    box = srv.mail_dir / "example.test" / "alice"
    assert len(srv.maildir_files("alice@example.test")) == 1
    subprocess.run(["rm", "-rf", str(box)], check=True)
    send(srv, [body_of(2)])
    files = srv.maildir_files("alice@example.test")
    assert len(files) == 1 and "body of message 2" in files[0].read_text()
    assert sorted(p.name for p in box.iterdir()) == ["cur", "new", "tmp"]
