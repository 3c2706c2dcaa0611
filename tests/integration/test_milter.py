"""Milters (milters: the milter protocol of Sendmail, rspamd and OpenDKIM) through the real binary:
a real libmilter filter (milter_filter.py, on Debian's python3-milter) on loopback sees each
message - envelope, header, body, macros - and edits its header or refuses, defers or drops it,
as its Subject says; messages are sent with smtplib."""
import json
import re
import smtplib
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import free_port, wait_for
from test_metrics import values

FILTER = Path(__file__).parent / "milter_filter.py"


@pytest.fixture
def milter(tmp_path):
    """The test filter on a free port: its address for `milters`, and what it saw (a list)."""
    port, log = free_port(), tmp_path / "milter.log"
    proc = subprocess.Popen(["/usr/bin/python3", str(FILTER), str(port), str(log)], stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "milter.err", "wb"))
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        raise RuntimeError("the test filter did not listen: " + (tmp_path / "milter.err").read_text())
    yield {"addr": f"inet:127.0.0.1:{port}",
           "seen": lambda: [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []}
    proc.kill()  # it keeps nothing; libmilter waits out its timeout on SIGTERM
    proc.wait(timeout=10)


def message(subject, extra=b""):
    return (b"From: alice@example.test\r\nSubject: " + subject.encode() + b"\r\n" + extra +
            b"\r\nLine one.\r\n.dotted line\r\n")


def send(c, subject, rcpts=("bob@example.test",), extra=b""):
    """One transaction on smtplib connection c: (code, reply text) of the end of data."""
    assert c.mail("alice@example.test")[0] == 250
    for r in rcpts:
        assert c.rcpt(r)[0] == 250
    code, text = c.data(message(subject, extra))
    return code, text.decode()


def test_a_filter_sees_the_whole_message_and_edits_its_header(make_server, milter):
    srv = make_server(milters=milter["addr"])
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as c:
        c.ehlo("client.example")
        code, text = send(c, "hello", rcpts=("bob@example.test", "alice@example.test"), extra=b"X-Remove: me\r\n")
    assert code == 250, text
    qid = text.split()[-1]
    (copy,) = srv.maildir_files("bob@example.test")
    data = copy.read_bytes()
    assert b"X-Filter: checked 2 recipient(s)\n" in data and b"Subject: [filtered] hello\n" in data, data
    assert b"X-Remove" not in data and b"Subject: hello" not in data
    assert data.index(b"X-Filter:") > data.index(b"From: alice@example.test")  # added at the header's end
    (seen,) = milter["seen"]()
    assert seen["mail"] == "<alice@example.test>" and seen["rcpts"] == ["<bob@example.test>", "<alice@example.test>"]
    assert seen["helo"] == "client.example" and seen["addr"] == "127.0.0.1" and seen["client_addr"] == "127.0.0.1"
    assert seen["j"] == "mx.example.test" and seen["qid"] == qid and seen["auth"] is None
    assert ["Subject", "hello"] in seen["headers"] and ["X-Remove", "me"] in seen["headers"]
    assert seen["body"] == "Line one.\r\n.dotted line\r\n"  # unstuffed, CRLF as SMTP carried it
    assert re.search(rf"event=milter session=\S+ qid={qid} milter=inet:127\.0\.0\.1:\d+ verdict=accept", srv.log_text())


def test_the_filter_refuses_defers_or_drops_a_message(make_server, milter):
    """One session: reject (550 with the filter's words after ours), tempfail (451), discard (250,
    nothing stored); the session goes on after each; nothing is stored but the accepted one."""
    srv = make_server(milters=milter["addr"])
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as c:
        c.ehlo("client.example")
        assert send(c, "please reject") == (550, "5.7.1 Message content rejected by the content filter: Spam "
                                                 "detected: score 99")
        assert send(c, "tempfail now") == (451, "4.7.1 Message temporarily refused by the content filter")
        code, text = send(c, "discard it")
        assert code == 250 and "queued as" in text
        assert send(c, "fine")[0] == 250
    assert len(srv.all_delivered()) == 1 and b"[filtered] fine" in srv.all_delivered()[0].read_bytes()
    log = srv.log_text()
    assert "verdict=reject reply=\"Spam detected: score 99\"" in log and "verdict=tempfail" in log
    assert "verdict=discard" in log and "event=discarded" in log


def test_filters_are_asked_in_turn_each_seeing_the_last_ones_edits(make_server, milter):
    srv = make_server(milters=f"{milter['addr']}, {milter['addr']}")
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as c:
        c.ehlo("client.example")
        assert send(c, "twice")[0] == 250
    data = srv.maildir_files("bob@example.test")[0].read_bytes()
    assert b"Subject: [filtered] [filtered] twice\n" in data and data.count(b"X-Filter:") == 2
    first, second = milter["seen"]()
    assert ["Subject", "[filtered] twice"] in second["headers"]


def test_a_filter_that_is_down_or_silent_defers_the_mail_unless_fail_open(make_server, milter):
    """Nothing listening: 451 4.3.0 and event=milter_failed; milter_fail_open = yes accepts
    without it. A filter silent for milter_timeout: the same 451."""
    down = f"inet:127.0.0.1:{free_port()}"
    srv = make_server(milters=down)
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as c:
        c.ehlo("client.example")
        assert send(c, "hello") == (451, "4.3.0 Content filter unavailable, try again later")
    assert not srv.all_delivered()
    assert f'event=milter_failed session=' in srv.log_text() and f"milter={down} error=" in srv.log_text()
    open_srv = make_server(milters=down, milter_fail_open="yes")
    with smtplib.SMTP("127.0.0.1", open_srv.port, timeout=20) as c:
        c.ehlo("client.example")
        assert send(c, "hello")[0] == 250
    assert b"X-Filter" not in open_srv.all_delivered()[0].read_bytes() and "action=accepted" in open_srv.log_text()
    mport = free_port()
    slow = make_server(milters=milter["addr"], milter_timeout="1s", metrics_listen=f"127.0.0.1:{mport}")
    started = time.time()
    with smtplib.SMTP("127.0.0.1", slow.port, timeout=20) as c:
        c.ehlo("client.example")
        assert send(c, "stall")[0] == 451
    assert time.time() - started < 10 and "no answer within milter_timeout (1s)" in slow.log_text()
    assert values(mport)["postern_milter_failures_total"] == 1


def test_milters_is_checked_at_check_config(tmp_path):
    from conftest import check_config
    conf = tmp_path / "p.conf"
    conf.write_text("hostname = mx.example.test\nmilters = inet:localhost:11332\n")
    out = check_config(conf)
    assert out.returncode == 1 and f"{conf}:2: milters: expected inet:address:port" in out.stderr, out.stderr


def test_a_broken_filter_or_a_client_gone_meanwhile_harms_nothing(make_server, milter, tmp_path):
    """A "filter" answering the negotiation with junk: 451 4.3.0, event=milter_failed. A client
    that leaves while the filter thinks: the session ends cleanly (the sanitizer build checks
    that nothing is touched after it is freed), and the next client is served."""
    junk = socket.socket()
    junk.bind(("127.0.0.1", 0))
    junk.listen(4)

    def answer_junk():
        conn, _ = junk.accept()
        conn.recv(100)
        conn.sendall(b"\x00\x00\x00\x05Xjunk")  # a packet of no kind the negotiation expects
        time.sleep(2)
        conn.close()
    import threading
    threading.Thread(target=answer_junk, daemon=True).start()
    srv = make_server(milters=f"inet:127.0.0.1:{junk.getsockname()[1]}")
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as c:
        c.ehlo("client.example")
        assert send(c, "hello")[0] == 451
    assert "error=\"unexpected reply 'X'\"" in srv.log_text()
    junk.close()

    slow = make_server(milters=milter["addr"], milter_timeout="3s")
    c = smtplib.SMTP("127.0.0.1", slow.port, timeout=20)
    c.ehlo("client.example")
    c.mail("alice@example.test")
    c.rcpt("bob@example.test")
    c.putcmd("DATA")
    assert c.getreply()[0] == 354
    c.send(message("stall").replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n")
    c.close()  # gone while the filter stalls
    wait_for(lambda: "no answer within milter_timeout (3s)" in slow.log_text() or
             "event=disconnect" in slow.log_text(), timeout=10, what="the session's end")
    with smtplib.SMTP("127.0.0.1", slow.port, timeout=20) as c2:
        c2.ehlo("client.example")
        assert send(c2, "fine")[0] == 250
    assert len(slow.all_delivered()) == 1  # the one the client saw through, not the one it left
