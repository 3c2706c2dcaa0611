"""The Prometheus endpoint (metrics_listen), through the real binary: each counter is read before
and after what a real client did, and must have moved by exactly that."""
import http.client
import re
import socket
import subprocess
import time

import pytest

from conftest import BIN, free_port, sighup_and_wait, wait_for
from test_relay import queue_empty, relay, scripted, send  # noqa: F401 (relay: a fixture)

SAMPLE = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"\\]*"(,[a-z_]+="[^"\\]*")*\})? -?[0-9.e+-]+$|^[a-z_]+ \+?Inf$')


def scrape(port, path="/metrics", method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request(method, path)
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, r.getheader("Content-Type"), body


def values(port):
    """{sample with its labels: value} from one scrape; every line is a comment or a valid sample,
    and every sample's metric has its # TYPE line."""
    status, ctype, body = scrape(port)
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    typed = set(re.findall(r"^# TYPE ([a-z_]+) ", body, re.M))
    out = {}
    for line in body.splitlines():
        if line.startswith("#"):
            continue
        assert SAMPLE.match(line), line
        name, v = line.rsplit(" ", 1)
        base = re.sub(r"_(bucket|sum|count)$", "", name.split("{")[0])
        assert base in typed or name.split("{")[0] in typed, line
        out[name] = float(v)
    return out


# gauges that follow the machine, not the client: another program writing to the disk moves them
OUTSIDE = {"postern_disk_free_bytes"}


def moved(before, after):
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0) and k not in OUTSIDE}


def reply_key(name, code, enhanced):
    return f'postern_smtp_replies_total{{reply="{name}",code="{code}",enhanced="{enhanced}"}}'


def test_counters_move_with_what_a_client_did(make_server):
    """One session: a message to a local mailbox, an unknown mailbox, a relay attempt, a bad
    command. Replies are counted by catalog row (refusals by reason), the message, its octets, its
    local copy and the latency of its 250 once each; the open connection shows while it lasts."""
    mport = free_port()
    srv = make_server(metrics_listen=f"127.0.0.1:{mport}")
    before = values(mport)
    c = srv.connect()
    assert values(mport)["postern_connections_open"] == 1
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<someone@elsewhere.example>", 250)
    c.expect("RCPT TO:<alice@example.test>", 250)
    c.expect("RCPT TO:<nobody@example.test>", 550, "5.1.1")
    c.expect("RCPT TO:<x@elsewhere.example>", 551, "5.7.1")
    c.expect("DATA", 354)
    c.send(b"Subject: metrics\r\n\r\nhello\r\n.\r\n")
    assert c.reply()[0] == 250
    c.expect("FROB", 500)
    c.expect("QUIT", 221)
    c.closed()
    after = values(mport)
    size = int(re.search(r"event=accepted .* size=(\d+)", srv.log_text()).group(1))
    latency = "postern_commit_latency_seconds"
    assert moved(before, after) == {
        'postern_connections_total{listener="listen"}': 1,
        reply_key("GREETING", 220, ""): 1,
        reply_key("EHLO_FIRST", 250, ""): 1,
        reply_key("SENDER_OK", 250, "2.1.0"): 1,
        reply_key("RCPT_OK", 250, "2.1.5"): 1,
        reply_key("RCPT_UNKNOWN", 550, "5.1.1"): 1,
        reply_key("RELAY_DENIED", 551, "5.7.1"): 1,
        reply_key("START_DATA", 354, ""): 1,
        reply_key("QUEUED", 250, "2.0.0"): 1,
        reply_key("UNKNOWN_COMMAND", 500, "5.5.2"): 1,
        reply_key("BYE", 221, "2.0.0"): 1,
        "postern_messages_accepted_total": 1,
        "postern_accepted_bytes_total": size,
        "postern_local_deliveries_total": 1,
        f'{latency}_bucket{{le="+Inf"}}': 1,
        f"{latency}_count": 1,
        f"{latency}_sum": after[f"{latency}_sum"] - before[f"{latency}_sum"],
    } | {k: 1 for k in after if k.startswith(f"{latency}_bucket") and after[k] != before[k]}
    assert 0 < after[f"{latency}_sum"] < 5 and after["postern_connections_open"] == 0
    assert len(srv.maildir_files("alice@example.test")) == 1
    assert after["postern_disk_free_bytes"] > 0 and after["postern_queue_messages"] == 0


def test_other_paths_and_methods_are_refused_and_reload_is_counted(make_server):
    mport = free_port()
    srv = make_server(metrics_listen=f"[::1]:{mport}, 127.0.0.1:{mport}")
    status, _, body = scrape(mport, "/")
    assert status == 404 and "/metrics" in body
    assert scrape(mport, method="POST")[0] == 405
    assert scrape(mport, method="HEAD")[0] == 200
    c = http.client.HTTPConnection("::1", mport, timeout=5)
    c.request("GET", "/metrics")
    assert c.getresponse().status == 200
    c.close()
    before = values(mport)
    sighup_and_wait(srv, "reloaded")
    assert moved(before, values(mport)) == {'postern_config_reloads_total{result="applied"}': 1}
    assert "role=metrics_listen" in srv.log_text()


def test_relayed_results_and_bounces_are_counted(relay):
    """A relayed message with one recipient taken and one refused by the peer: sent 1, bounced 1,
    and the bounce made here (1 report) delivered to the local sender (1 local delivery)."""
    def reply(line, n):
        if line.startswith("RCPT") and "nobody" in line:
            return b"550 5.1.1 no such user here\r\n"
        return b"354 go\r\n" if line == "DATA" else b"250 2.0.0 ok\r\n"
    scripted(relay, reply=reply)
    mport = free_port()
    srv = relay["start"](metrics_listen=f"127.0.0.1:{mport}")
    before = values(mport)
    send(srv, ["nobody@scripted.test", "somebody@scripted.test"])
    wait_for(lambda: srv.maildir_files("alice@example.test"), what="the bounce")
    wait_for(lambda: queue_empty(srv), what="the queue empty")
    got = moved(before, values(mport))
    assert got['postern_relay_recipients_total{result="sent"}'] == 1
    assert got['postern_relay_recipients_total{result="bounced"}'] == 1
    assert 'postern_relay_recipients_total{result="deferred"}' not in got
    assert got["postern_reports_made_total"] == 1 and got["postern_local_deliveries_total"] == 1
    assert got["postern_messages_accepted_total"] == 1


def test_check_config_names_a_metrics_address_that_clashes(tmp_path):
    conf = tmp_path / "t.conf"
    conf.write_text("listen = 127.0.0.1:2525\nmetrics_listen = 0.0.0.0:2525\n")
    r = subprocess.run([str(BIN), "check-config", "-c", str(conf)], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert f"{conf}:2: metrics_listen: 0.0.0.0:2525 clashes with 127.0.0.1:2525 (listen, line 1)" in r.stderr
    conf.write_text("metrics_listen = localhost:9100\n")
    r = subprocess.run([str(BIN), "check-config", "-c", str(conf)], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and f"{conf}:1: metrics_listen" in r.stderr


def test_a_reload_moves_the_endpoint_or_keeps_it_where_it_was(make_server):
    """metrics_listen is applied by a reload: the endpoint moves to the new address (the start time
    stays); a new address that cannot be bound leaves it where it was, said in the log."""
    a, b = free_port(), free_port()
    srv = make_server(metrics_listen=f"127.0.0.1:{a}")
    started = values(a)["postern_start_time_seconds"]
    conf = srv.conf_path.read_text()
    srv.conf_path.write_text(conf.replace(f"metrics_listen = 127.0.0.1:{a}", f"metrics_listen = 127.0.0.1:{b}"))
    sighup_and_wait(srv, "metrics_listen_changed")
    assert scrape(b)[0] == 200 and values(b)["postern_start_time_seconds"] == started
    with pytest.raises(ConnectionRefusedError):
        scrape(a)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    srv.conf_path.write_text(conf.replace(f"metrics_listen = 127.0.0.1:{a}",
                                          f"metrics_listen = 127.0.0.1:{taken.getsockname()[1]}"))
    sighup_and_wait(srv, "metrics_listen_failed")
    taken.close()
    assert scrape(b)[0] == 200
    log = srv.log_text()
    assert "the endpoint stays on the previous ones" in log and "keys=metrics_listen" not in log


def test_connections_are_bounded_and_requests_too(make_server):
    """metrics_max_connections: past it a connection is closed unanswered (and counted); an idle one
    holds its place until command_timeout; a request over 8 KiB gets 431; HTTP/1.0 works."""
    mport = free_port()
    srv = make_server(metrics_listen=f"127.0.0.1:{mport}", metrics_max_connections=2, command_timeout="2s")
    idle = [socket.create_connection(("127.0.0.1", mport), timeout=5) for _ in range(2)]
    time.sleep(0.2)
    extra = socket.create_connection(("127.0.0.1", mport), timeout=5)
    extra.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        answered = extra.recv(100)
    except ConnectionResetError:  # closed with the request unread
        answered = b""
    assert answered == b""  # closed: two are open
    extra.close()
    for s in idle:
        s.close()
    def refused_so_far():  # the server sees the idle ones' close a moment after this test does
        try:
            return values(mport)["postern_metrics_connections_refused_total"]
        except (ConnectionError, http.client.RemoteDisconnected):
            return None
    assert wait_for(refused_so_far, what="a scrape again") >= 1
    big = socket.create_connection(("127.0.0.1", mport), timeout=5)
    big.sendall(b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"x" * 9000 + b"\r\n\r\n")
    assert big.recv(100).startswith(b"HTTP/1.1 431 ")
    big.close()
    slow = socket.create_connection(("127.0.0.1", mport), timeout=5)
    slow.sendall(b"GET /metrics HTTP/1.0\r\n")  # never finished: command_timeout closes it
    start = time.monotonic()
    assert slow.recv(100) == b"" and 1.5 < time.monotonic() - start < 5
    one = socket.create_connection(("127.0.0.1", mport), timeout=5)
    one.sendall(b"GET /metrics?x=1 HTTP/1.0\n\n")
    reply = b""
    while chunk := one.recv(65536):
        reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and b"postern_build_info" in reply
