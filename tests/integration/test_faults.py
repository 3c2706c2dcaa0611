"""Faults: SIGKILL under load (every acknowledged message survives, no half message is ever in
new/), power cuts (ext4 on a loop device stopped without a flush: under load, with three recipients
per message, after a mail reader moved the mail, on a mailbox's own disk, with relayed mail queued,
during and after a recovery), torn spool files, a full disk (real tmpfs), write failures
(RLIMIT_FSIZE), read-only and deleted Maildirs, and the privilege drop."""
import fcntl
import os
import pwd
import random
import re
import resource
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import BIN, wait_for


# The three commit paths (commit.c): the journal; every message alone on a disk thread (all are
# bigger than journal_message_max = 0); the committer's batches with two file-system flushes.
COMMIT_PATHS = {"journal": {}, "alone": {"journal_message_max": "0"}, "direct": {"commit_journal": "no",
                                                                                  "journal_message_max": "1M"}}


def send_until_stopped(port, tag, count, acked, lock, rcpts=("alice@example.test",)):
    """One session sending `count` messages; records the Message-Id of every 250 seen."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        f = s.makefile("rb")

        def reply():
            while True:
                line = f.readline()
                if not line:
                    raise ConnectionError("closed")
                if line[3:4] == b" ":
                    return int(line[:3])

        assert reply() == 220
        s.sendall(b"EHLO load.example\r\n")
        reply()
        for i in range(count):
            mid = f"{tag}-{i}"
            s.sendall(b"MAIL FROM:<load@sender.example>\r\n" + b"".join(f"RCPT TO:<{r}>\r\n".encode() for r in rcpts)
                      + b"DATA\r\n")
            if [reply() for _ in range(len(rcpts) + 2)] != [250] * (len(rcpts) + 1) + [354]:
                return
            body = (f"Message-Id: <{mid}@load>\r\n\r\n" + "payload line\r\n" * 40 + f"END {mid}\r\n.\r\n").encode()
            s.sendall(body)
            if reply() == 250:
                with lock:
                    acked.add(mid)
    except (OSError, ConnectionError, AssertionError):
        return


def start_load(srv, tag, count, acked, sessions=20, rcpts=("alice@example.test",)):
    """Starts `sessions` threads, each a session sending `count` messages (Message-Ids tag + session
    + number) and adding the id of every 250 to acked; returns the threads."""
    lock = threading.Lock()
    threads = [threading.Thread(target=send_until_stopped, args=(srv.port, f"{tag}s{n}", count, acked, lock, rcpts))
               for n in range(sessions)]
    for t in threads:
        t.start()
    return threads


def join_all(threads):
    for t in threads:
        t.join()


def stored_ids(srv, address=None):
    """Message ids in new/ (of one address's mailbox, or all); asserts every stored file is complete."""
    ids = set()
    for path in (srv.maildir_files(address) if address else srv.all_delivered()):
        text = path.read_text()
        assert "Message-Id: <" in text, f"half message in new/: {path} ({len(text)} bytes)"
        mid = text.split("Message-Id: <", 1)[1].split("@load>", 1)[0]
        assert text.endswith(f"END {mid}\n"), f"half message in new/: {path}"
        ids.add(mid)
    return ids


def test_kill9_under_load_loses_no_acknowledged_message(make_server):
    srv = make_server(log_level="warn")
    acked = set()
    rng = random.Random(20261123)
    kills = 0
    for rnd in range(5):  # 5 kills, each into a load of 2,000 messages over 20 sessions
        threads = start_load(srv, f"r{rnd}", 100, acked)
        time.sleep(rng.uniform(0.02, 0.2))
        srv.kill9()
        kills += 1
        join_all(threads)
        srv.start()  # same directories: recovery runs at start-up
        found = stored_ids(srv)
        missing = acked - found
        assert not missing, f"round {rnd}: acknowledged but lost: {sorted(missing)[:5]}"
    print(f"crash test: {kills} kills, {len(acked)} messages acknowledged, {len(stored_ids(srv))} found after restart")
    assert kills == 5 and len(acked) > 0
    assert len(acked) < 5 * 2000, "every round finished before its kill: the test proved nothing"


def test_torn_spool_file_moved_aside(make_server):
    srv = make_server(relay_networks="127.0.0.0/8")
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<s@sender.example>", 250)
    c.expect("RCPT TO:<x@servfail.test>", 250)  # its DNS fails: the message stays queued
    c.expect("DATA", 354)
    good = c.expect("hello\r\n.", 250)[-1].split()[-1]
    c.close()
    queue = srv.spool_dir / "queue"
    full = (queue / good).read_bytes()
    (queue / "TORN0001").write_bytes(full[: len(full) // 2])  # as a crash mid-write would leave it
    (queue / "TORN0002").write_bytes(full[:-3])  # END record cut
    (queue / "COPY0003").write_bytes(full)  # whole, but under another name than its id line's
    no_sender = full.replace(b"\nsender ", b"\nsendr ", 1)  # END record intact, envelope not
    assert no_sender != full
    (queue / "BAD0004").write_bytes(no_sender.replace(f"id {good}\n".encode(), b"id BAD0004\n", 1))
    (srv.spool_dir / "tmp" / "HALF").write_bytes(b"POSTERN-QUEUE 1\nid x\n")
    srv.kill9()
    srv.start()
    assert sorted(p.name for p in queue.iterdir()) == [good]
    moved = sorted(p.name for p in (srv.spool_dir / "corrupt").iterdir())
    assert moved == ["BAD0004", "COPY0003", "TORN0001", "TORN0002"]
    assert list((srv.spool_dir / "tmp").iterdir()) == []
    log = srv.log_text()
    assert "event=spool_corrupt" in log and "queued=1 corrupt=4 stale_tmp=1" in log
    assert re.search(r"TORN0001 reason=\"incomplete: no END record", log)
    assert re.search(rf"COPY0003 reason=\"its id line names {good}\"", log)
    assert re.search(r"BAD0004 reason=\"queue file envelope incomplete", log)


@pytest.fixture
def tmpfs(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + r.stderr.decode())
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])


def fill(mnt, leave):
    """Fills the file system at mnt until only `leave` octets are free."""
    st = os.statvfs(mnt)
    free = st.f_bavail * st.f_frsize
    filler = mnt / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler


def deliver(srv, rcpt="alice@example.test", body=b"hello\r\n"):
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    code, lines = c.cmd("MAIL FROM:<s@sender.example>")
    if code != 250:
        return code, lines
    code, lines = c.cmd(f"RCPT TO:<{rcpt}>")
    if code != 250:
        return code, lines
    c.expect("DATA", 354)
    c.send(body + b".\r\n")
    return c.reply()


def deliver_to_many(srv, rcpts, body=b"hello\r\n"):
    """One message to several recipients: ([RCPT reply codes], (DATA's final reply) or None when no
    RCPT was taken); ([MAIL's reply code], None) when MAIL is refused."""
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    code, _ = c.cmd("MAIL FROM:<s@sender.example>")
    if code != 250:
        return [code], None
    codes = [c.cmd(f"RCPT TO:<{r}>")[0] for r in rcpts]
    if 250 not in codes:
        return codes, None
    c.expect("DATA", 354)
    c.send(body + b".\r\n")
    return codes, c.reply()


def test_disk_full_threshold_452_then_recovers(make_server, tmpfs):
    srv = make_server(mail_dir=tmpfs / "mail", spool_dir=tmpfs / "spool", min_free_space="1M",
                      journal_size="1M")
    assert deliver(srv)[0] == 250
    filler = fill(tmpfs, 512 * 1024)
    time.sleep(1.5)  # the space watch measures once a second
    code, lines = deliver(srv)
    assert code == 452 and "4.3.1" in lines[0]
    filler.unlink()
    time.sleep(1.5)
    assert deliver(srv)[0] == 250
    assert len(srv.maildir_files("alice@example.test")) == 2


def test_declared_size_without_room_452_at_mail(make_server, tmpfs):
    """RFC 1870 6.1: a SIZE the disk has no room for now (free space would fall below
    min_free_space) is refused at MAIL with 452 4.3.1, before the text is sent; a smaller one and a
    MAIL without SIZE go on."""
    srv = make_server(mail_dir=tmpfs / "mail", spool_dir=tmpfs / "spool", min_free_space="1M",
                      journal_size="1M")
    fill(tmpfs, 1536 * 1024)  # 1.5M free: 0.5M above min_free_space
    time.sleep(1.5)  # the space watch measures once a second
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect(f"MAIL FROM:<s@sender.example> SIZE={1024 * 1024}", 452, "4.3.1")
    c.expect("MAIL FROM:<s@sender.example> SIZE=100000", 250)
    c.expect("RSET", 250)
    c.expect("MAIL FROM:<s@sender.example>", 250)
    c.expect("QUIT", 221)


def test_disk_full_mid_message_451_nothing_half_stored(make_server, tmpfs):
    srv = make_server(mail_dir=tmpfs / "mail", spool_dir=tmpfs / "spool", min_free_space="0",
                      journal_size="1M")
    assert deliver(srv)[0] == 250
    filler = fill(tmpfs, 256 * 1024)
    code, lines = deliver(srv, body=b"x" * 998 + b"\r\n" + (b"y" * 998 + b"\r\n") * 600)  # ~600 KB
    assert code == 451 and "4.3.0" in lines[0]
    assert len(srv.maildir_files("alice@example.test")) == 1
    assert list((tmpfs / "mail" / "example.test" / "alice" / "tmp").iterdir()) == []
    filler.unlink()
    time.sleep(1.2)
    assert deliver(srv)[0] == 250
    assert "event=store_failed" in srv.log_text()


def test_write_failure_file_size_limit_451(make_server):
    limit = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))  # noqa: E731
    srv = make_server(_preexec=limit, commit_journal="no")  # a journal file could not be made
    code, lines = deliver(srv, body=(b"z" * 998 + b"\r\n") * 100)  # 100 KB > 64 KiB
    assert code == 451 and "4.3.0" in lines[0]
    assert srv.all_delivered() == []
    assert deliver(srv)[0] == 250  # small mail still flows


@pytest.mark.parametrize("path", sorted(COMMIT_PATHS))
def test_read_only_mailbox_is_held_so_the_other_recipients_get_their_mail(make_server, path):
    """A mailbox that cannot take mail (new/ read-only) makes the message 451 for all its recipients
    (one DATA reply answers for every RCPT); then it is held: on the sender's retry its RCPT gets 450
    4.2.0 and the other recipient gets the message. Once repaired, a probe releases it. On each
    commit path."""
    srv = make_server(mailbox_recheck_interval="1s", **COMMIT_PATHS[path])
    assert deliver(srv)[0] == 250
    new = srv.mail_dir / "example.test" / "alice" / "new"
    os.chmod(new, 0o555)
    try:
        codes, (code, lines) = deliver_to_many(srv, ["alice@example.test", "bob@example.test"])
        assert codes == [250, 250] and code == 451 and "4.3.0" in lines[0]
        assert f"{new}" in srv.log_text() and "event=mailbox_held" in srv.log_text()
        assert srv.maildir_files("bob@example.test") == []
        codes, (code, _) = deliver_to_many(srv, ["alice@example.test", "bob@example.test"])  # the retry
        assert codes == [450, 250] and code == 250
        assert len(srv.maildir_files("bob@example.test")) == 1
        code, lines = deliver(srv)
        assert code == 450 and lines[0].startswith("4.2.0 Mailbox temporarily unavailable")
        assert "reason=mailbox_held" in srv.log_text()
        time.sleep(2.5)  # probes ran and found it still read-only
        assert deliver(srv)[0] == 450
        assert "event=mailbox_released" not in srv.log_text()
    finally:
        os.chmod(new, 0o700)
    wait_for(lambda: "event=mailbox_released" in srv.log_text(), timeout=5, what="the probe releasing alice")
    assert deliver(srv)[0] == 250
    assert len(srv.maildir_files("alice@example.test")) == 2
    assert list((srv.mail_dir / "example.test" / "alice" / "tmp").iterdir()) == []  # no probe file left


def test_mailbox_hold_max_0_holds_none(make_server):
    """mailbox_hold_max = 0: the old way, every message for a broken mailbox is 451."""
    srv = make_server(mailbox_hold_max="0")
    assert deliver(srv)[0] == 250
    new = srv.mail_dir / "example.test" / "alice" / "new"
    os.chmod(new, 0o555)
    try:
        for _ in range(2):
            code, lines = deliver(srv)
            assert code == 451 and "4.3.0" in lines[0]
        assert "event=mailbox_not_held" in srv.log_text()
        assert deliver(srv, "bob@example.test")[0] == 250
    finally:
        os.chmod(new, 0o700)
    assert deliver(srv)[0] == 250


def test_mailbox_on_its_own_full_disk_is_held_until_there_is_room(make_server, tmpfs):
    """catchall.test's mailboxes on a disk of their own (a tmpfs mounted inside mail_dir) that is
    full: a message for alice (on mail_dir's disk) and zoe (there) is 451; on the retry zoe's RCPT
    gets 450 and alice gets the message; when the disk has room again zoe takes mail."""
    srv = make_server(mailbox_recheck_interval="1s", min_free_space="0")
    domain = srv.mail_dir / "catchall.test"
    assert deliver(srv)[0] == 250  # makes mail_dir
    domain.mkdir()
    subprocess.run(["mount", "--bind", str(tmpfs), str(domain)], check=True)
    try:
        if os.geteuid() == 0:  # the server's user makes mailboxes there
            pw = pwd.getpwnam("postern")
            os.chown(domain, pw.pw_uid, pw.pw_gid)
        filler = fill(tmpfs, 16 * 1024)
        big = (b"y" * 998 + b"\r\n") * 100  # 100 KB: more than the 16 KiB left
        rcpts = ["alice@example.test", "zoe@catchall.test"]
        codes, (code, lines) = deliver_to_many(srv, rcpts, big)
        assert codes == [250, 250] and code == 451
        wait_for(lambda: deliver_to_many(srv, rcpts, big)[0] == [250, 450], timeout=5,
                 what="zoe held, alice taken")  # 452 at MAIL until the space watch measured again
        assert len(srv.maildir_files("alice@example.test")) == 2
        filler.unlink()
        wait_for(lambda: "event=mailbox_released" in srv.log_text(), timeout=5, what="zoe released")
        codes, (code, _) = deliver_to_many(srv, rcpts, big)
        assert codes == [250, 250] and code == 250
        assert len(srv.maildir_files("zoe@catchall.test")) == 1
    finally:
        srv.stop()
        subprocess.run(["umount", "-l", str(domain)])


def test_deleted_mail_dir_451_then_recovers(make_server):
    server = make_server(mailbox_recheck_interval="1s")
    assert deliver(server)[0] == 250
    shutil.rmtree(server.mail_dir)
    code, lines = deliver(server)
    assert code == 451 and "4.3.0" in lines[0]
    assert "cannot create maildir" in server.log_text()
    assert deliver(server)[0] == 450  # held until a probe can make it
    server.mail_dir.mkdir()
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postern")
        os.chown(server.mail_dir, pw.pw_uid, pw.pw_gid)
    wait_for(lambda: deliver(server)[0] == 250, timeout=5, what="alice taking mail again")


@pytest.mark.skipif(os.geteuid() != 0, reason="privilege drop needs root")
def test_drops_root_to_postern(server):
    pw = pwd.getpwnam("postern")
    assert deliver(server)[0] == 250  # served, so start-up (and the drop) is complete
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    uids = [line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")][0]
    assert uids == [str(pw.pw_uid)] * 4
    assert all(p.stat().st_uid == pw.pw_uid for p in server.all_delivered())
    assert "event=privileges_dropped user=postern" in server.log_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="privilege drop needs root")
@pytest.mark.parametrize("user, why", [("root", "refusing to run as root"), ("nosuchuser", "no such user")])
def test_refuses_to_run_as_root_or_a_missing_user(tmp_path, user, why):
    """Found by check-config too (it said ok before), and at start before any port is bound."""
    from conftest import Server
    srv = Server(tmp_path, user=user)
    line = next(i for i, text in enumerate(srv.conf_path.read_text().splitlines(), 1) if text.startswith("user"))
    for args in (["check-config", "-c", str(srv.conf_path)], ["-c", str(srv.conf_path)]):
        out = subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=10)
        assert out.returncode == 1 and f"{srv.conf_path}:{line}: user: " in out.stderr and why in out.stderr, \
            out.stderr
        assert "event=listening" not in out.stderr


EXT4_IOC_SHUTDOWN = 0x8004587D  # _IOR('X', 125, __u32), from linux/ext4.h
EXT4_GOING_FLAGS_NOLOGFLUSH = 2  # stop the file system now; no flush of page cache or ext4's journal


class LoopDisk:
    """An ext4 file system (with its journal, as a mail server's disk has) on a loop device, which
    a test can cut off like a power failure: EXT4_IOC_SHUTDOWN without a flush leaves on the disk
    exactly what had been written to it - nothing of the page cache - and the next mount replays
    ext4's journal as after a crash. Unlike a real disk, it keeps what was written but not yet
    flushed from a write cache: this finds a 250 given before the write, not a missing cache flush."""

    def __init__(self, image, mnt):
        self.image, self.mnt = image, mnt

    def make(self):
        with open(self.image, "wb") as f:
            f.truncate(256 << 20)
        for cmd in (["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", str(self.image)],
                    ["mount", "-o", "loop", str(self.image), str(self.mnt)]):
            r = subprocess.run(cmd, capture_output=True)
            if r.returncode != 0:
                return " ".join(cmd[:2]) + ": " + r.stderr.decode()
        os.chmod(self.mnt, 0o755)
        return None

    def cut_power(self):
        fd = os.open(self.mnt, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.ioctl(fd, EXT4_IOC_SHUTDOWN, struct.pack("I", EXT4_GOING_FLAGS_NOLOGFLUSH))
        finally:
            os.close(fd)

    def remount(self):
        subprocess.run(["umount", str(self.mnt)], check=True)
        subprocess.run(["mount", "-o", "loop", str(self.image), str(self.mnt)], check=True, capture_output=True)

    def remove(self):
        """Unmounts (detaching the loop device) and deletes the image; a file system still busy is
        detached lazily, and its loop device freed when the last user goes."""
        if subprocess.run(["umount", str(self.mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(self.mnt)], capture_output=True)
        self.image.unlink(missing_ok=True)


@pytest.fixture
def make_loop_disk(tmp_path):
    """Factory: make_loop_disk(mount point) -> a mounted LoopDisk; all removed, newest first, at
    teardown. Ask for it before make_server, so that the servers stop before the unmounting."""
    disks = []

    def factory(mnt):
        mnt.mkdir(parents=True, exist_ok=True)
        disk = LoopDisk(tmp_path / f"disk{len(disks)}.img", mnt)
        why = disk.make()
        if why:
            disk.remove()
            pytest.skip("cannot mount an ext4 loop device here: " + why)
        disks.append(disk)
        return disk

    yield factory
    for disk in reversed(disks):
        disk.remove()


@pytest.fixture
def loop_disk(make_loop_disk, tmp_path):
    return make_loop_disk(tmp_path / "disk")


@pytest.mark.parametrize("path", sorted(COMMIT_PATHS))
def test_power_cut_under_load_loses_no_acknowledged_message(loop_disk, make_server, path):
    """The 250 promise against a power cut, not only a killed process: the file system is stopped
    in mid-load with nothing more written, the server killed, the disk mounted again (ext4 replays
    its journal) and the server started (Postern replays its own). Every message that got a 250 is
    in new/ and complete, and no file in new/ is a half message."""
    srv = make_server(mail_dir=loop_disk.mnt / "mail", spool_dir=loop_disk.mnt / "spool", log_level="debug",
                      **COMMIT_PATHS[path])
    acked = set()
    rng = random.Random(20261201)
    for rnd in range(3):
        threads = start_load(srv, f"r{rnd}", 500, acked)
        time.sleep(rng.uniform(0.2, 0.6))
        before = len(acked)
        uncut = uncut if rnd else srv.log_text()  # after a cut a failed journal sends mail the direct path
        loop_disk.cut_power()
        srv.kill9()
        join_all(threads)
        loop_disk.remount()
        srv.start()
        missing = acked - stored_ids(srv)
        assert not missing, f"round {rnd}: acknowledged but lost: {sorted(missing)[:5]}"
        print(f"power cut {rnd}: {before} acknowledged before the cut, {len(acked)} in all")
        assert len(acked) < (rnd + 1) * 20 * 500, f"round {rnd} finished before its cut: it proved nothing"
    assert len(acked) > 0
    taken = {"journal": "path=journal", "alone": "event=commit_alone", "direct": "path=direct"}
    assert [p for p in taken if taken[p] in uncut] == [path], "the load took another commit path"
    if path == "journal":  # the cut took unflushed files with it, and the journal brought them back
        pattern = r"event=journal_recovered records=\d+ restored=(\d+)"
        restored = [int(n) for n in re.findall(pattern, srv.log_text())]
        assert len(restored) == 4 and sum(restored) > 0, restored


def test_power_cut_under_load_with_three_recipients_per_message(loop_disk, make_server):
    """One file linked into three mailboxes, one journal record naming the three: after a cut,
    every acknowledged message is whole in each of them."""
    srv = make_server(mail_dir=loop_disk.mnt / "mail", spool_dir=loop_disk.mnt / "spool", log_level="warn")
    rcpts = ("alice@example.test", "bob@example.test", "zoe@catchall.test")
    acked = set()
    threads = start_load(srv, "m", 500, acked, rcpts=rcpts)
    time.sleep(0.4)
    loop_disk.cut_power()
    srv.kill9()
    join_all(threads)
    loop_disk.remount()
    srv.start()
    assert 0 < len(acked) < 20 * 500
    for address in rcpts:
        missing = acked - stored_ids(srv, address)
        assert not missing, f"{address}: {len(missing)} acknowledged but lost, e.g. {sorted(missing)[:5]}"


def test_power_cut_after_a_reader_moved_the_mail_to_cur(loop_disk, make_server):
    """A mail reader moves new mail to cur/ (Maildir) before Postern's checkpoint flushed it, and
    another program's fsync commits ext4's journal - the rename in it, the file's data not yet
    written. After the cut, the file in cur/ is empty: the journal must restore it there."""
    srv = make_server(mail_dir=loop_disk.mnt / "mail", spool_dir=loop_disk.mnt / "spool",
                      journal_checkpoint_interval="1h", log_level="info")
    sent = {}
    for i in range(20):
        body = f"Subject: m{i}\r\n\r\n" + f"line {i}\r\n" * 30
        assert deliver(srv, body=body.encode())[0] == 250
        sent[f"Subject: m{i}"] = body.replace("\r\n", "\n")
    maildir = srv.mail_dir / "example.test" / "alice"
    for f in (maildir / "new").iterdir():
        f.rename(maildir / "cur" / (f.name + ":2,S"))
    older = {"1000000000.M1P1Q1.old.example:2,S": "Subject: old\n\n", "other-mda-name:2,": "Subject: x\n\n"}
    for name, text in older.items():  # mail on disk from before the journal's records: left alone
        with open(maildir / "cur" / name, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    other = loop_disk.mnt / "other"  # a program's fsync commits every pending metadata change
    with open(other, "wb") as f:
        f.write(b"x")
        f.flush()
        os.fsync(f.fileno())
    loop_disk.cut_power()
    srv.kill9()
    loop_disk.remount()
    srv.start()
    for name, text in older.items():
        assert (maildir / "cur" / name).read_text() == text
    found = {}
    for f in (maildir / "cur").iterdir():
        if f.name in older:
            continue
        text = f.read_text()
        subject = next((line for line in text.splitlines() if line.startswith("Subject: ")), f"empty {f.name}")
        found[subject] = text
    assert sorted(found) == sorted(sent)
    assert all(found[s].endswith(sent[s]) for s in sent)


def cut_a_domain_disk_after_load(make_loop_disk, make_server, tmp_path, path, rcpts):
    """example.test's mailboxes on a disk of their own, mounted inside mail_dir: 20 sessions x 20
    messages to rcpts, all acknowledged; once the checkpoint has run, that disk alone loses its
    power and the server restarts. Returns the server and the acknowledged ids."""
    main = make_loop_disk(tmp_path / "main")
    domain = make_loop_disk(main.mnt / "mail" / "example.test")
    if os.geteuid() == 0:  # that disk's root is the domain directory: the server's user makes mailboxes there
        pw = pwd.getpwnam("postern")
        os.chown(domain.mnt, pw.pw_uid, pw.pw_gid)
    srv = make_server(mail_dir=main.mnt / "mail", spool_dir=main.mnt / "spool", log_level="warn",
                      **COMMIT_PATHS[path])
    acked = set()
    join_all(start_load(srv, "", 20, acked, rcpts=rcpts))
    assert len(acked) == 400
    time.sleep(2.5)  # past journal_checkpoint_interval (1s): the records are retired
    domain.cut_power()
    srv.kill9()
    domain.remount()
    srv.start()
    return srv, acked


@pytest.mark.parametrize("path", sorted(COMMIT_PATHS))
def test_power_cut_of_a_mailbox_on_another_disk(make_loop_disk, make_server, tmp_path, path):
    """A domain's mailboxes on a disk of their own (mounted inside mail_dir): flushing mail_dir's
    file system does not make them durable. Every 250 must still mean on that disk: all mail is
    acknowledged, the checkpoint has run, then that disk alone loses its power."""
    srv, acked = cut_a_domain_disk_after_load(make_loop_disk, make_server, tmp_path, path,
                                              ("alice@example.test",))
    missing = acked - stored_ids(srv)
    assert not missing, f"{len(missing)} acknowledged but lost, e.g. {sorted(missing)[:5]}"


@pytest.mark.parametrize("path", sorted(COMMIT_PATHS))
def test_power_cut_of_a_second_mailbox_on_another_disk(make_loop_disk, make_server, tmp_path, path):
    """A message for a mailbox on mail_dir's disk and one on a disk of its own: its file cannot be
    linked across file systems, so the second mailbox gets a copy, renamed into its new/. That name
    must be on disk before the 250 too (fsync of new/, not of the mailbox directory above it). On
    ext4 any directory's fsync commits its whole journal: this finds a missing fsync there, not one
    of the wrong directory (that would show on XFS)."""
    rcpts = ("zoe@catchall.test", "alice@example.test")  # the first on mail_dir's disk
    srv, acked = cut_a_domain_disk_after_load(make_loop_disk, make_server, tmp_path, path, rcpts)
    missing = acked - stored_ids(srv, "alice@example.test")
    assert not missing, f"{len(missing)} acknowledged but lost, e.g. {sorted(missing)[:5]}"


@pytest.mark.parametrize("path", ["alone", "direct"])
def test_power_cut_keeps_every_queued_message(loop_disk, make_server, path):
    """Relayed mail waits in the queue (its domain's DNS fails): after a power cut every message
    that got a 250 is still queued, whole, and delivered to its local recipient as well."""
    srv = make_server(mail_dir=loop_disk.mnt / "mail", spool_dir=loop_disk.mnt / "spool",
                      relay_networks="127.0.0.0/8", log_level="info", **COMMIT_PATHS[path])
    queued = []
    for i in range(30):
        c = srv.connect()
        c.expect("EHLO client.example", 250)
        c.expect("MAIL FROM:<s@sender.example>", 250)
        c.expect(f"RCPT TO:<r{i}@servfail.test>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("DATA", 354)
        queued.append(c.expect(f"Message-Id: <q{i}@load>\r\n\r\nEND q{i}\r\n.", 250)[-1].split()[-1])
        c.close()
    loop_disk.cut_power()
    srv.kill9()
    loop_disk.remount()
    srv.start()
    assert sorted(p.name for p in (srv.spool_dir / "queue").iterdir()) == sorted(queued)
    assert "queued=30 corrupt=0" in srv.log_text()
    assert {f"q{i}" for i in range(30)} <= stored_ids(srv)


def test_power_cut_during_recovery_then_recovery_again(loop_disk, make_server):
    """Recovery writes files back without a flush per file and retires the records only after one
    syncfs(): a second cut in the middle of it must leave the records to replay once more, and a
    third one just after it finished must find every file it wrote back on the disk."""
    srv = make_server(mail_dir=loop_disk.mnt / "mail", spool_dir=loop_disk.mnt / "spool", journal_size="32M",
                      journal_checkpoint_interval="1h", log_level="info")
    acked = set()
    join_all(start_load(srv, "", 150, acked))
    assert len(acked) == 3000
    loop_disk.cut_power()  # first cut: no checkpoint yet, every file's data still in the page cache
    srv.kill9()
    loop_disk.remount()
    log_start = len(srv.log_text())
    cut = threading.Thread(target=cut_when_logged, args=(srv, log_start, "event=journal_restored", 50, loop_disk))
    cut.start()
    with pytest.raises(RuntimeError):  # a write-back fails once the disk is gone: start-up fails
        srv.start()
    cut.join()
    log = srv.log_text()[log_start:]
    assert "event=journal_recovered" not in log, "the second cut came after the recovery"
    if srv.proc.poll() is None:
        srv.kill9()
    else:
        srv.log.close()
    loop_disk.remount()
    srv.start()
    assert re.search(r"event=journal_recovered records=3000 restored=\d+", srv.log_text()[log_start:])
    loop_disk.cut_power()  # third cut, just after a finished recovery retired the records
    srv.kill9()
    loop_disk.remount()
    srv.start()
    missing = acked - stored_ids(srv)
    assert not missing, f"{len(missing)} acknowledged but lost, e.g. {sorted(missing)[:5]}"


def cut_when_logged(srv, log_start, mark, count, disk, timeout=30):
    """Cuts the disk's power as soon as the server's log shows mark count times after log_start."""
    deadline = time.time() + timeout
    while time.time() < deadline and srv.log_text()[log_start:].count(mark) < count:
        time.sleep(0.001)
    disk.cut_power()
