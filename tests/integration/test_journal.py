"""The commit journal (commit_journal = yes, the default): local mail is durable through a record
in spool_dir/journal; checkpoints flush the Maildir files and retire records; after a crash the
server puts back every Maildir file of an unretired record that is missing or different.

A power cut is simulated by killing the server (SIGKILL) and then removing, truncating or changing
the Maildir files that were not yet flushed - what a power cut could leave of them."""
import re
import threading
import time

from conftest import Server


def send(srv, bodies, rcpts=("alice@example.test",), acked=None):
    """One session; sends each body to rcpts; returns the queue ids, asserting 250 for each (and
    appending each acknowledged body to acked, when given)."""
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    ids = []
    for body in bodies:
        c.expect("MAIL FROM:<s@sender.example>", 250)
        for r in rcpts:
            c.expect(f"RCPT TO:<{r}>", 250)
        c.expect("DATA", 354)
        ids.append(c.expect(body + "\r\n.", 250)[-1].split()[-1])
        if acked is not None:
            acked.append(body)
    c.expect("QUIT", 221)
    c.close()
    return ids


def body_of(i, size=0):
    return f"Subject: journal {i}\r\nMessage-Id: <j{i}@test>\r\n\r\nbody of message {i}\r\n" + "x" * size


def mid_of(path):
    return int(re.search(r"Message-Id: <j(\d+)@test>", path.read_text()).group(1))


def recovered(srv):
    """(records, restored) of the last start-up."""
    m = re.findall(r"event=journal_recovered records=(\d+) restored=(\d+)", srv.log_text())
    return tuple(map(int, m[-1]))


def test_crash_before_checkpoint_restores_lost_files(make_server):
    srv = make_server(journal_checkpoint_interval="1h")
    send(srv, [body_of(i) for i in range(30)], rcpts=("alice@example.test", "bob@example.test"))
    srv.kill9()
    alice = srv.maildir_files("alice@example.test")
    expect = {p.name: p.read_bytes() for p in alice}
    assert len(expect) == 30
    for p in alice[:10]:  # never reached the disk
        p.unlink()
    for p in alice[10:15]:  # name on disk, data not
        p.write_bytes(b"")
    for p in alice[15:20]:  # same size, wrong bytes
        p.write_bytes(b"\0" * len(expect[p.name]))
    cur = srv.mail_dir / "example.test" / "alice" / "cur"
    for p in alice[20:23]:  # a mail reader had moved these to cur/: they are there
        p.rename(cur / (p.name + ":2,S"))
    for p in srv.maildir_files("bob@example.test")[:4]:
        p.unlink()
    srv.start()
    # alice's and bob's copies are hard links of one file: the 10 damaged in place count twice
    assert recovered(srv) == (30, 20 + 10 + 4)
    now = {p.name: p.read_bytes() for p in srv.maildir_files("alice@example.test")}
    assert len(now) == 27 and all(expect[n] == b for n, b in now.items())
    assert sorted(p.name for p in cur.iterdir()) == sorted(p.name + ":2,S" for p in alice[20:23])
    assert len(srv.maildir_files("bob@example.test")) == 30
    assert "event=journal_restored" in srv.log_text()
    assert list((srv.mail_dir / "example.test" / "alice" / "tmp").iterdir()) == []


def test_failed_link_is_cancelled_not_restored(make_server):
    """The record is on disk before the links into new/. A message whose link fails after that gets
    451 and a cancel record: a crash before the checkpoint must not deliver it (its client will send
    it again), and the server starts even though the mailbox is still unwritable."""
    srv = make_server(journal_checkpoint_interval="1h")
    send(srv, [body_of(0)])  # makes alice's mailbox
    new = srv.mail_dir / "example.test" / "alice" / "new"
    new.chmod(0o555)
    try:
        c = srv.connect()
        c.expect("EHLO client.example", 250)
        c.expect("MAIL FROM:<s@sender.example>", 250)
        c.expect("RCPT TO:<bob@example.test>", 250)  # linked first, then taken back
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("DATA", 354)
        code, lines = c.cmd(body_of(1) + "\r\n.")
        assert code == 451 and "4.3.0" in lines[0], (code, lines)
        c.expect("QUIT", 221)
        c.close()
        send(srv, [body_of(2)], rcpts=("bob@example.test",))
        assert "event=journal_cancelled records=1" in srv.log_text()
        srv.kill9()
        for p in srv.maildir_files("bob@example.test"):
            p.unlink()  # as if the cut took bob's unflushed file: the journal must bring it back
        srv.start()
        log = srv.log_text()
        assert "event=journal_recovered records=3 restored=1 cancelled=1" in log, log[-2000:]
    finally:
        new.chmod(0o700)
    assert [mid_of(p) for p in srv.maildir_files("alice@example.test")] == [0]
    assert [mid_of(p) for p in srv.maildir_files("bob@example.test")] == [2]


def test_checkpoint_retires_records(make_server):
    srv = make_server(journal_checkpoint_interval="1s")
    send(srv, [body_of(i) for i in range(5)])
    time.sleep(2.5)  # a checkpoint flushed the files and retired their records
    srv.kill9()
    gone = srv.maildir_files("alice@example.test")[0]
    gone.unlink()  # the user deleted it after reading: it must not come back
    srv.start()
    assert recovered(srv) == (0, 0)
    assert not gone.exists() and len(srv.maildir_files("alice@example.test")) == 4


def test_graceful_stop_leaves_nothing_to_recover(make_server):
    srv = make_server(journal_checkpoint_interval="1h")
    send(srv, [body_of(i) for i in range(5)])
    srv.stop()
    assert "event=journal_closed checkpoints=1 full_waits=0 pending_bytes=0" in srv.log_text()
    srv.start()
    assert recovered(srv) == (0, 0)


def test_ring_wraps_and_recovers_the_newest_records_in_order(make_server):
    """A 1 MiB journal and 2 KiB messages: checkpoints come when a quarter is used, the ring wraps
    several times; after a crash exactly the unretired newest messages are put back."""
    srv = make_server(journal_size="1M", journal_checkpoint_interval="1h", log_level="info")
    n = 1500
    send(srv, [body_of(i, 2000) for i in range(n)])
    time.sleep(0.5)  # a checkpoint in progress finishes
    send(srv, [body_of(n)])  # at least this one is not retired
    srv.kill9()
    for p in srv.maildir_files("alice@example.test"):
        p.unlink()  # lose everything: only unretired records can come back
    srv.start()
    records, restored = recovered(srv)
    back = sorted(mid_of(p) for p in srv.maildir_files("alice@example.test"))
    assert 1 <= records < n and restored == records == len(back)
    assert back == list(range(n + 1 - records, n + 1))  # the newest, none missing, none twice
    assert srv.log_text().count("event=journal_restored") == restored


def test_full_ring_under_load_waits_for_room_and_loses_nothing(make_server):
    """The smallest journal (1 MiB) and 20 sessions sending 150 KB messages at once (a record may
    take a quarter of the ring): batches outgrow the ring, so the committer writes part of a batch
    and waits for checkpoints to make room (counted in full_waits). Every message arrives whole; a
    kill -9 in the middle of the next such burst loses none that got its 250."""
    srv = make_server(journal_size="1M", journal_message_max="200K", journal_checkpoint_interval="1h",
                      log_level="debug")
    lines = 1900
    text = ("y" * 76 + "\r\n") * lines

    def burst(first, per_session):
        acked, threads = [], []
        for t in range(20):
            bodies = [body_of(first + t * per_session + i) + "\r\n" + text for i in range(per_session)]
            threads.append(threading.Thread(target=lambda b=bodies: acked.extend(send_acked(srv, b))))
        for t in threads:
            t.start()
        return acked, threads

    bursts = 0
    while bursts < 5 and "event=journal_full" not in srv.log_text():  # a slow (sanitized) server: more
        acked, threads = burst(bursts * 200, 10)
        for t in threads:
            t.join(60)
        assert len(acked) == 200
        bursts += 1
    srv.stop()
    waits = int(re.search(r"event=journal_closed checkpoints=\d+ full_waits=(\d+)", srv.log_text()).group(1))
    assert waits > 0, "the ring never filled: the test proved nothing"
    srv.start()
    acked, threads = burst(1000, 30)
    deadline = time.time() + 30
    while len(acked) < 50 and time.time() < deadline:
        time.sleep(0.001)
    srv.kill9()
    for t in threads:
        t.join(60)
    assert 50 <= len(acked) < 600, f"{len(acked)} acknowledged: the kill came {'too late' if acked else 'never'}"
    srv.start()
    stored = {mid_of(p): p for p in srv.maildir_files("alice@example.test")}
    assert set(range(bursts * 200)) | set(acked) <= set(stored), "an acknowledged message is missing"
    whole = [p.read_text().count("y" * 76 + "\n") == lines for p in stored.values()]  # Maildir files use LF
    assert all(whole), "a message is not whole"


def send_acked(srv, bodies):
    """Like send, but returns the message numbers that got a 250 and stops at a closed connection."""
    acked = []
    try:
        send(srv, bodies, acked=acked)
    except (ConnectionError, OSError, AssertionError):
        pass  # killed
    return [int(re.search(r"<j(\d+)@test>", body).group(1)) for body in acked]


def test_journal_off_takes_the_direct_path_and_big_messages_commit_alone(make_server):
    srv = make_server(journal_message_max="4K")
    send(srv, [body_of(1), body_of(2, 10000)])
    log = srv.log_text()
    assert "event=commit_batch path=journal messages=1" in log
    assert "event=commit_alone" in log and "path=direct" not in log
    assert len(srv.maildir_files("alice@example.test")) == 2
    off = make_server(commit_journal="no")
    send(off, [body_of(3), body_of(4, 70000)])
    assert not (off.spool_dir / "journal").exists()
    log = off.log_text()
    assert "path=journal" not in log and "event=commit_batch path=direct messages=1" in log
    assert "event=commit_alone" in log and len(off.maildir_files("alice@example.test")) == 2


def test_relayed_mail_takes_the_direct_path(make_server):
    srv = make_server(relay_networks="127.0.0.0/8")
    send(srv, [body_of(1)], rcpts=("alice@example.test", "x@servfail.test"))
    assert "event=commit_batch path=direct messages=1" in srv.log_text()
    assert len(list((srv.spool_dir / "queue").iterdir())) == 1


def test_wrong_size_journal_is_recovered_then_resized(make_server):
    srv = make_server(journal_checkpoint_interval="1h")
    send(srv, [body_of(i) for i in range(3)])
    srv.kill9()
    for p in srv.maildir_files("alice@example.test"):
        p.unlink()
    text = srv.conf_path.read_text().replace("journal_size = 4M", "journal_size = 2M")
    srv.conf_path.write_text(text)
    srv.start()
    assert recovered(srv) == (3, 3)
    assert (srv.spool_dir / "journal").stat().st_size == 2 * 1024 * 1024


def test_unusable_journal_refuses_to_start(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    srv = Server(root)
    srv.spool_dir.mkdir(parents=True)
    (srv.spool_dir / "journal").mkdir()  # a directory where the file should be
    try:
        srv.start()
        raise AssertionError("started with an unusable journal")
    except RuntimeError as e:
        assert "event=startup_failed key=commit_journal" in str(e) and "journal" in str(e)
