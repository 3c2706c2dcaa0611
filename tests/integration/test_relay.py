"""Outbound relay end to end: Postern relays to real SMTP peers on 127.0.0.2/.3 (aiosmtpd) and
to a scripted peer on 127.0.0.4, found through the test DNS server (conftest.DNS_ZONES):
MX preference and fail-over, null MX, NXDOMAIN, SERVFAIL, 4xx retries, 5xx bounces (DSNs parsed
with the email package), hostile replies, kill -9 with a full queue, `postern queue` and
`postern explain`."""
import base64
import email
import email.policy
import email.utils
import os
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest
from aiosmtpd.controller import Controller

from conftest import BIN, free_port, sighup_and_wait, wait_for


def common_port():
    """A TCP port free on 127.0.0.2, .3 and .4 alike (smtp_port is one number for all MX)."""
    for _ in range(50):
        port = free_port()
        try:
            for host in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "::1"):
                with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
                    s.bind((host, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no common free port")


class Sink:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 Ok: stored"


class Peers:
    def __init__(self, port):
        self.port = port
        self.controllers = {}
        self.sinks = {}

    def start(self, host):
        sink = Sink()
        c = Controller(sink, hostname=host, port=self.port)
        c.start()
        self.controllers[host], self.sinks[host] = c, sink
        return sink

    def stop_all(self):
        for c in self.controllers.values():
            c.stop()


class Scripted:
    """A scripted SMTP peer on 127.0.0.4: reply(line, n) gives the bytes to answer each command
    (n counts transactions across connections); None stalls. Records what it was sent."""

    def __init__(self, port, greeting=b"220 mx.scripted.test ESMTP\r\n", ehlo=None, reply=None, starttls=None,
                 tls=None, ehlo_tls=None, implicit_tls=None):
        self.greeting = greeting
        self.ehlo = ehlo or b"250-mx.scripted.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
        self.starttls = starttls  # the reply to STARTTLS; None: agrees, then drops the connection
        self.tls = tls  # an ssl.SSLContext: STARTTLS gets 220 and a real handshake
        self.ehlo_tls = ehlo_tls  # the EHLO reply once TLS is on (default: ehlo's)
        self.implicit_tls = implicit_tls  # an ssl.SSLContext: TLS from the first byte (port 465 style)
        self.reply = reply or (lambda line, n: b"250 2.0.0 ok\r\n")
        self.transactions = 0
        self.connections = 0
        self.active = 0
        self.max_active = 0
        self.tls_used = False
        self.lines = []
        self.bodies = []
        self.sources = []  # the client address of each connection
        self.closed = False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.4", port))
        self.sock.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, source = self.sock.accept()
            except OSError:
                return
            if self.closed:  # a connection meant for the peer that took this port after us
                conn.close()
                return
            self.sources.append(source[0])
            self.connections += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn):
        tls_on = False
        try:
            if self.implicit_tls:
                conn = self.implicit_tls.wrap_socket(conn, server_side=True)
                tls_on = self.tls_used = True
            f = conn.makefile("rb")
            conn.sendall(self.greeting)
            while True:
                line = f.readline()
                if not line:
                    return
                text = line.decode(errors="replace").rstrip("\r\n")
                self.lines.append(text)
                verb = text.split(" ")[0].upper()
                if verb == "EHLO":
                    out = self.ehlo_tls if tls_on and self.ehlo_tls else self.ehlo
                elif verb == "HELO":
                    out = b"250 mx.scripted.test\r\n"
                elif verb == "STARTTLS" and self.tls:
                    conn.sendall(b"220 2.0.0 ready\r\n")
                    conn = self.tls.wrap_socket(conn, server_side=True)
                    f = conn.makefile("rb")
                    tls_on = self.tls_used = True
                    continue
                elif verb == "STARTTLS" and self.starttls:
                    out = self.starttls
                elif verb == "STARTTLS":  # a broken TLS server: agrees, then drops the connection
                    conn.sendall(b"220 go ahead\r\n")
                    return
                elif verb == "QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                elif verb == "DATA":
                    out = self.reply(text, self.transactions)
                    if out and out.startswith(b"354"):
                        conn.sendall(out)
                        body = b""
                        while not (body == b".\r\n" or body.endswith(b"\r\n.\r\n")):  # empty text, or text
                            chunk = f.readline()
                            if not chunk:
                                return
                            body += chunk
                        self.bodies.append(body)
                        out = self.reply("<END>", self.transactions)
                        self.transactions += 1
                elif verb == "MAIL" and self.reply(text, self.transactions) is None:
                    time.sleep(30)  # stall
                    return
                else:
                    out = self.reply(text, self.transactions)
                if out is None:
                    time.sleep(30)
                    return
                conn.sendall(out)
        except OSError:
            return
        finally:
            self.active -= 1
            conn.close()

    def close(self):
        """Stops listening at once: close() alone would leave the accept() under way listening on
        the port (Linux keeps the socket for the blocked call), taking connections meant for the
        next test's peer on the same address and port."""
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


@pytest.fixture
def relay(make_server):
    """A Postern relaying for 127.0.0.0/8, retrying every second, plus the peer port."""
    port = common_port()
    peers = Peers(port)
    state = {"peers": peers, "port": port}

    def start(**overrides):
        conf = dict(relay_networks="127.0.0.0/8", smtp_port=port, retry_schedule="1s",
                    smtp_greeting_timeout="3s", smtp_command_timeout="3s", delay_warning_time="0")
        conf.update(overrides)
        return make_server(**conf)

    state["start"] = start
    yield state
    peers.stop_all()
    if "scripted" in state:
        state["scripted"].close()


def send(srv, rcpts, body=b"Subject: relay test\r\n\r\nhello\r\n", sender="alice@example.test", mail_params=""):
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect(f"MAIL FROM:<{sender}>{mail_params}", 250)
    for r in rcpts:
        c.expect(r if r.startswith("RCPT") else f"RCPT TO:<{r}>", 250)
    c.expect("DATA", 354)
    stuffed = b"".join(b"." + line if line.startswith(b".") else line for line in body.splitlines(keepends=True))
    c.send(stuffed + b".\r\n")
    code, lines = c.reply()
    assert code == 250, lines
    c.expect("QUIT", 221)
    return lines[-1].split()[-1]


def queue_empty(srv):
    return not any((srv.spool_dir / "queue").iterdir())


def dsn_for(srv, address="alice@example.test"):
    files = wait_for(lambda: srv.maildir_files(address), what="a DSN in " + address)
    return email.message_from_bytes(files[-1].read_bytes(), policy=email.policy.default)


def report_fields(msg):
    """(per-message fields, [per-recipient fields]) of the message/delivery-status part."""
    status = [p for p in msg.walk() if p.get_content_type() == "message/delivery-status"][0]
    groups = [dict(g.items()) for g in status.get_payload()]
    return groups[0], groups[1:]


def human_part(msg):
    return [p for p in msg.walk() if p.get_content_type() == "text/plain"][0].get_content()


BODY = (b"From: alice@example.test\r\nTo: bob@two-mx.test\r\nSubject: byte test\r\n\r\n"
        b"line one\r\n.a line starting with a dot\r\n..two dots\r\n\r\ntrailing spaces   \r\nend\r\n")


def test_delivered_byte_identical_to_preferred_mx(relay):
    mx1 = relay["peers"].start("127.0.0.2")
    mx2 = relay["peers"].start("127.0.0.3")
    srv = relay["start"]()
    qid = send(srv, ["bob@two-mx.test"], body=BODY)
    wait_for(lambda: mx1.messages, what="delivery to mx1")
    assert mx2.messages == []
    sender, rcpts, content = mx1.messages[0]
    assert sender == "alice@example.test" and rcpts == ["bob@two-mx.test"]
    # byte-identical apart from the Received line Postern added at the top
    assert content.startswith(b"Received: from client.example ([127.0.0.1])")
    assert f"id {qid}".encode() in content.split(b"\r\n\r\n")[0]
    assert content.endswith(BODY) and b"Return-Path" not in content
    wait_for(lambda: queue_empty(srv), what="the queue file removed")
    assert "status=sent" in srv.log_text()


def test_first_mx_down_second_gets_it(relay):
    mx2 = relay["peers"].start("127.0.0.3")  # nothing listens on 127.0.0.2
    srv = relay["start"]()
    send(srv, ["bob@two-mx.test", "carol@two-mx.test"])
    wait_for(lambda: mx2.messages, what="delivery to mx2")
    assert sorted(mx2.messages[0][1]) == ["bob@two-mx.test", "carol@two-mx.test"]  # one transaction
    assert "cannot connect to mx1.two-mx.test[127.0.0.2]" in srv.log_text()
    wait_for(lambda: queue_empty(srv), what="queue empty")


def test_implicit_mx_and_cname(relay):
    a = relay["peers"].start("127.0.0.2")
    srv = relay["start"]()
    send(srv, ["x@a-only.test", "y@alias.test"])
    wait_for(lambda: len(a.messages) == 2, what="both deliveries")


def test_root_target_among_other_mx_is_skipped(relay):
    """'MX 0 .' next to a real MX is no null MX (RFC 7505 3 forbids the mix): the real one gets it."""
    a = relay["peers"].start("127.0.0.2")
    srv = relay["start"]()
    send(srv, ["m@mixed-null.test"])
    wait_for(lambda: a.messages, what="delivery to the real exchanger")
    wait_for(lambda: queue_empty(srv), what="queue empty")


def test_null_mx_refused_at_rcpt_time(relay):
    srv = relay["start"]()
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<alice@example.test>", 250)
    c.expect("RCPT TO:<x@nullmx.test>", 556, "5.1.10")


def write_queue_file(srv, qid, rcpt, sender="alice@example.test", extra=""):
    msg = b"Received: by test\nSubject: queued\n\nbody\n"
    head = (f"POSTERN-QUEUE 2\nid {qid}\ncreated {int(time.time())}\nsender {sender}\nsmtputf8 0\nbody8bit 0\n"
            f"ret -\nenvid -\n{extra}rcpt 0 - {rcpt}\nmessage {len(msg)}\n").encode()
    (srv.spool_dir / "queue").mkdir(parents=True, exist_ok=True)
    (srv.spool_dir / "queue" / qid).write_bytes(head + msg + f"END {len(msg)}\n".encode())


def test_null_mx_queued_mail_bounces_without_connecting(relay):
    """Mail already queued for a null-MX domain (the RCPT-time lookup had timed out, say): no
    connection is attempted, and the sender gets a 556 5.1.10 DSN."""
    srv = relay["start"]()
    srv.stop()
    write_queue_file(srv, "0000000000000000A1", "x@nullmx-sender.test")
    srv.start()
    msg = dsn_for(srv)
    _, rcpts = report_fields(msg)
    assert rcpts[0]["Action"] == "failed" and rcpts[0]["Status"] == "5.1.10"
    assert "null MX" in human_part(msg) and "reach the person another way" in human_part(msg)
    log = srv.log_text()
    assert "status=null_mx" in log and "smtp_client" not in log
    wait_for(lambda: queue_empty(srv), what="queue empty")


def test_nxdomain_bounces_and_servfail_defers(relay):
    """The queue's own verdicts: with recipient_domain_check off (or a domain gone after the RCPT)
    NXDOMAIN bounces at once; SERVFAIL stays queued."""
    srv = relay["start"](recipient_domain_check="no")
    qid = send(srv, ["x@nxdomain.test", "y@servfail.test"])
    msg = dsn_for(srv)
    per_msg, rcpts = report_fields(msg)
    assert per_msg["Reporting-MTA"] == "dns; mx.example.test"
    assert [r["Final-Recipient"] for r in rcpts] == ["rfc822; x@nxdomain.test"]
    assert rcpts[0]["Status"] == "5.1.2"
    state = wait_for(lambda: (srv.spool_dir / "state" / qid).exists() and (srv.spool_dir / "state" / qid).read_text())
    assert "4.4.3" in state and "SERVFAIL" in state
    assert (srv.spool_dir / "queue" / qid).exists()  # y@servfail.test stays queued


class MovingDNS:
    """A DNS server on 127.0.0.1 whose answers a test may change: records[(name, "MX"|"A")] is a
    list of (preference, exchanger) or addresses, every answer with a TTL of 1 second. A name it
    does not hold is NXDOMAIN; a type it does not hold, an empty answer."""

    def __init__(self, records):
        self.records = records
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                query, client = self.sock.recvfrom(512)
                self.sock.sendto(self._answer(query), client)
            except (IndexError, struct.error, UnicodeDecodeError):
                continue
            except OSError:
                return

    def _answer(self, query):
        qid, flags = struct.unpack("!HH", query[:4])
        i, labels = 12, []
        while query[i]:
            labels.append(query[i + 1:i + 1 + query[i]].decode().lower())
            i += 1 + query[i]
        qtype = struct.unpack("!H", query[i + 1:i + 3])[0]
        name, kind = ".".join(labels), {1: "A", 15: "MX"}.get(qtype)
        answers = []
        for value in self.records.get((name, kind), []):
            if kind == "A":
                rdata = socket.inet_aton(value)
            else:
                rdata = struct.pack("!H", value[0]) + b"".join(
                    bytes([len(label)]) + label.encode() for label in value[1].split(".")) + b"\0"
            answers.append(struct.pack("!HHHIH", 0xC00C, qtype, 1, 1, len(rdata)) + rdata)
        rcode = 0 if any(n == name for n, _ in self.records) else 3
        head = struct.pack("!HHHHHH", qid, 0x8480 | (flags & 0x0100) | rcode, 1, len(answers), 0, 0)
        return head + query[12:i + 5] + b"".join(answers)

    def close(self):
        self.sock.close()


def scripted(relay, **kw):
    s = Scripted(relay["port"], **kw)
    relay["scripted"] = s
    return s


def test_5xx_bounce_dsn_explains_itself(relay):
    def reply(line, n):
        if line.startswith("RCPT") and "nobody" in line:
            return b"550 5.1.1 <nobody@scripted.test>: no such user here\r\n"
        return b"354 go\r\n" if line == "DATA" else b"250 2.0.0 ok\r\n"
    peer = scripted(relay, reply=reply)
    srv = relay["start"]()
    send(srv, ["nobody@scripted.test", "somebody@scripted.test"], body=BODY)
    msg = dsn_for(srv)
    assert msg["From"].addresses[0].addr_spec == "MAILER-DAEMON@mx.example.test"
    assert msg.get_content_type() == "multipart/report" and msg.get_param("report-type") == "delivery-status"
    per_msg, rcpts = report_fields(msg)
    assert len(rcpts) == 1 and rcpts[0]["Final-Recipient"] == "rfc822; nobody@scripted.test"
    assert rcpts[0]["Action"] == "failed" and rcpts[0]["Status"] == "5.1.1"
    assert rcpts[0]["Remote-MTA"] == "dns; mx.scripted.test"
    assert rcpts[0]["Diagnostic-Code"].startswith("smtp; 550 5.1.1")
    text = human_part(msg)
    assert "No mailbox with this address exists" in text and "typos" in text
    headers = [p for p in msg.walk() if p.get_content_type() == "text/rfc822-headers"][0]
    assert b"Subject: byte test" in headers.get_payload(decode=True)
    assert len(peer.bodies) == 1  # somebody@ got it
    # the DSN itself went out with the null sender
    dsn_file = srv.maildir_files("alice@example.test")[-1].read_bytes()
    assert dsn_file.startswith(b"Return-Path: <>\n")
    assert b"Content-Transfer-Encoding" not in dsn_file  # all 7-bit: no label (7bit is the default)


def test_bounce_explains_another_servers_reply_not_as_posterns_own(relay):
    """A peer's "550 5.7.1 ... spam" is a policy refusal; Postern's own catalog row with 5.7.1 is
    "551 User not local; relaying denied", which it used to print here as what the reply meant."""
    peer = scripted(relay, reply=lambda l, n: b"550 5.7.1 Message refused as spam\r\n" if l.startswith("RCPT")
                    else b"250 2.0.0 ok\r\n")
    srv = relay["start"]()
    send(srv, ["someone@scripted.test"])
    text = human_part(dsn_for(srv))
    assert "The server mx.scripted.test[127.0.0.4] replied: 550 5.7.1 Message refused as spam" in text
    assert "blocked by policy" in text and "does not handle" not in text
    assert not peer.bodies


def test_peer_text_cannot_forge_log_fields(relay):
    """A peer's reply text goes into detail="..." in the log: a '"' in it must not end the value,
    or the text could add key=value pairs (status=sent) to the line an administrator reads."""
    scripted(relay, reply=lambda l, n: b'550 5.1.1 no" status=sent relay=forged.example x="y\r\n'
             if l.startswith("RCPT") else b"250 2.0.0 ok\r\n")
    srv = relay["start"]()
    qid = send(srv, ["someone@scripted.test"])
    line = wait_for(lambda: next((l for l in srv.log_text().splitlines() if f"event=delivery qid={qid}" in l), None),
                    what="the delivery line")
    assert line.endswith('status=bounced detail="550 5.1.1 no\' status=sent relay=forged.example x=\'y"'), line
    assert '"' not in line.split('detail="', 1)[1][:-1]


def test_4xx_then_250_is_retried_and_delivered(relay):
    def reply(line, n):
        if line.startswith("RCPT") and n == 0 and not reply.deferred:
            reply.deferred = True
            return b"451 4.3.0 try again later\r\n"
        return b"354 go\r\n" if line == "DATA" else b"250 2.0.0 ok\r\n"
    reply.deferred = False
    peer = scripted(relay, reply=reply)
    srv = relay["start"]()
    send(srv, ["later@scripted.test"])
    # the first try's pipelined DATA got 354 with no recipient: it sent a lone dot, no text
    wait_for(lambda: [b for b in peer.bodies if b != b".\r\n"], what="delivery on retry")
    assert peer.bodies[0] == b".\r\n" and len(peer.bodies) == 2
    wait_for(lambda: queue_empty(srv), what="queue empty")
    log = srv.log_text()
    assert "status=deferred detail=\"451 4.3.0 try again later\"" in log and "status=sent" in log
    assert srv.maildir_files("alice@example.test") == []  # no bounce, no delay warning


def test_552_to_rcpt_is_taken_as_temporary(relay):
    """RFC 5321 4.5.3.1.10: a client SHOULD take a 552 to RCPT as 452. The recipient is tried
    again, not bounced; the delay warning's Status has the class of a delay (4.2.2, not 5.2.2)."""
    def reply(line, n):
        if line.startswith("RCPT") and "full@" in line:
            reply.refused += 1
            if reply.refused <= 3:
                return b"552 5.2.2 mailbox full\r\n"
        return b"354 go\r\n" if line == "DATA" else b"250 2.0.0 ok\r\n"
    reply.refused = 0
    peer = scripted(relay, reply=reply)
    srv = relay["start"](retry_schedule="2s", delay_warning_time="1s")
    qid = send(srv, ["full@scripted.test", "ok@scripted.test"])
    wait_for(lambda: f"event=queue_done qid={qid}" in srv.log_text(), timeout=20, what="full@ delivered on a retry")
    assert reply.refused == 4
    assert sum(l == "RCPT TO:<full@scripted.test>" for l in peer.lines) == 4
    log = srv.log_text()
    assert log.count('rcpt=<full@scripted.test> relay=mx.scripted.test') == 4
    assert log.count('status=deferred detail="552 5.2.2 mailbox full"') == 3
    assert "status=bounced" not in log
    reports = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
               for f in srv.maildir_files("alice@example.test")]
    assert [m["Subject"] for m in reports] == ["Delayed Mail (still being retried)"]
    _, rcpts = report_fields(reports[0])
    assert [(r["Final-Recipient"], r["Action"], r["Status"]) for r in rcpts] == \
        [("rfc822; full@scripted.test", "delayed", "4.2.2")]
    assert rcpts[0]["Diagnostic-Code"] == "smtp; 552 5.2.2 mailbox full"


def test_551_bounce_names_the_new_address(relay):
    def reply(line, n):
        if line.startswith("RCPT"):
            return b"551 5.1.6 User not local; please try <new.home@example.org>\r\n"
        return b"250 ok\r\n"
    scripted(relay, reply=reply)
    srv = relay["start"]()
    send(srv, ["moved@scripted.test"])
    text = human_part(dsn_for(srv))
    assert "Resend your message to <new.home@example.org>" in text


@pytest.mark.parametrize("name,kw", [
    ("continuation code mismatch", dict(ehlo=b"250-mx\r\n251 PIPELINING\r\n")),
    ("250-x then bare 250", dict(greeting=b"220-x\r\n220\r\n", reply=lambda l, n: b"250-x\r\n250\r\n" if not l.startswith("DATA") else b"354 go\r\n")),
    ("overlong reply line", dict(ehlo=b"250-" + b"A" * 600 + b"\r\n250 x\r\n")),
    ("garbage", dict(greeting=b"\x00\xff garbage without a code\r\n")),
    ("no CRLF at all", dict(greeting=b"220" + b"x" * 5000)),
    ("stall at MAIL", dict(reply=lambda l, n: None if l.startswith("MAIL") else b"250 ok\r\n")),
    ("250 to DATA instead of 354", dict(reply=lambda l, n: b"250 2.0.0 ok\r\n")),
])
def test_hostile_peer_replies_defer_safely(relay, name, kw):
    peer = scripted(relay, **kw)
    srv = relay["start"]()
    qid = send(srv, ["h@scripted.test"])
    if name == "250-x then bare 250":  # well-formed after all: it must be delivered
        wait_for(lambda: peer.bodies, what="delivery")
        return
    state = srv.spool_dir / "state" / qid
    wait_for(lambda: state.exists() and " P " in state.read_text(), timeout=20, what="a deferral")
    assert (srv.spool_dir / "queue" / qid).exists()
    assert peer.bodies == []
    if name == "continuation code mismatch":  # the line quoted as it was, nothing after it
        assert state.read_text().endswith("sent a malformed reply: 251 PIPELINING\nEND\n"), state.read_text()
    c = srv.connect()  # still serving
    c.expect("NOOP", 250)


def test_null_mx_checks_wait_at_most_dns_timeout(make_server, silent_resolver):
    """A resolver that never answers: MAIL (MX role) and a relayed RCPT each wait dns_timeout for
    the null-MX lookup, then go on (no verdict is no refusal), and the log names what was asked."""
    srv = make_server(dns_resolver=silent_resolver, dns_timeout="1s", relay_networks="127.0.0.0/8")
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    for line, code in (("MAIL FROM:<s@silent-sender.example>", 250), ("RCPT TO:<r@silent-rcpt.example>", 250)):
        start = time.monotonic()
        c.expect(line, code)
        assert 0.9 < time.monotonic() - start < 5
    c.expect("RCPT TO:<alice@example.test>", 250)  # a local recipient needs no lookup
    log = srv.log_text()
    assert "check=sender_domain domain=silent-sender.example waited=1s" in log
    assert "check=recipient_domain domain=silent-rcpt.example waited=1s" in log


def test_smtp_bind_address_is_where_outbound_connections_come_from(relay, tmp_path):
    """smtp_bind_address: the relay's connections come from that address; one this host does not
    have defers the mail with the reason (and no connection is made)."""
    peer = scripted(relay, reply=lambda line, n: b"354 go\r\n" if line == "DATA" else b"250 2.0.0 ok\r\n")
    srv = relay["start"](smtp_bind_address="127.0.0.7")
    send(srv, ["x@scripted.test"])
    wait_for(lambda: peer.bodies, what="the message at the peer")
    assert peer.sources == ["127.0.0.7"]
    srv.stop()
    srv = relay["start"](smtp_bind_address="192.0.2.1", smtp_bind_address6="::1")
    send(srv, ["y@scripted.test"])
    wait_for(lambda: "cannot use smtp_bind_address 192.0.2.1: Cannot assign requested address" in srv.log_text(),
             what="the bind failure")
    wait_for(lambda: "status=deferred" in srv.log_text(), what="the deferral, logged after the failure")
    assert peer.connections == 1
    conf = tmp_path / "bad.conf"
    conf.write_text("hostname = mx.example.test\nsmtp_bind_address = ::1\nsmtp_bind_address6 = 127.0.0.1\n")
    r = subprocess.run([str(BIN), "-c", str(conf), "check-config"], capture_output=True, text=True)
    assert r.returncode == 1 and f"{conf}:2: smtp_bind_address: '::1' is not an IPv4 address" in r.stderr
    assert f"{conf}:3: smtp_bind_address6: '127.0.0.1' is not an IPv6 address" in r.stderr


def test_sender_with_null_mx_refused(relay):
    srv = relay["start"]()
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<someone@nullmx-sender.test>", 550, "5.7.27")
    c.expect("MAIL FROM:<someone@nxdomain.test>", 250)  # no null MX: fine


def test_sender_domain_check_refuses_domains_no_reply_could_reach(relay):
    """sender_domain_check: a sender domain that does not exist, or has neither MX nor address
    records, gets 550 5.1.8; one whose lookup fails, 450 4.1.8; MX, A-only and AAAA-only domains,
    local domains and the null sender pass."""
    srv = relay["start"](sender_domain_check="yes")
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    for sender, code, enhanced in [("a@nxdomain.test", 550, "5.1.8"), ("a@no-mail.test", 550, "5.1.8"),
                                   ("a@servfail.test", 450, "4.1.8"), ("a@nullmx-sender.test", 550, "5.7.27"),
                                   ("a@two-mx.test", 250, "2.1.0"), ("a@a-only.test", 250, "2.1.0"),
                                   ("a@v6only.test", 250, "2.1.0"), ("alice@example.test", 250, "2.1.0"),
                                   ("", 250, "2.1.0")]:
        c.expect(f"MAIL FROM:<{sender}>", code, enhanced)
        c.expect("RSET", 250)
    c.expect("MAIL FROM:<a@no-mail.test>", 550, "Sender address rejected: domain not found")
    log = srv.log_text()
    assert "sender=<a@nxdomain.test> reply=550" in log and "sender=<a@servfail.test> reply=450" in log


def test_recipient_domain_check_refuses_a_relayed_domain_that_does_not_exist(relay):
    """recipient_domain_check (on by default): a relayed recipient whose domain does not exist or
    has neither MX nor address records is refused at RCPT (550 5.1.2) instead of bounced later; a
    failed lookup (SERVFAIL) lets it pass to the queue. Off: accepted (the queue bounces it)."""
    srv = relay["start"]()
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<alice@example.test>", 250)
    c.expect("RCPT TO:<x@nxdomain.test>", 550, "5.1.2")
    c.expect("RCPT TO:<x@no-mail.test>", 550, "Recipient address rejected: domain not found")
    c.expect("RCPT TO:<x@nullmx.test>", 556, "5.1.10")
    c.expect("RCPT TO:<x@servfail.test>", 250)
    c.expect("RCPT TO:<x@a-only.test>", 250)
    c.expect("RCPT TO:<x@v6only.test>", 250)
    c.expect("RCPT TO:<x@two-mx.test>", 250)
    assert "rcpt=<x@nxdomain.test> reply=550 reason=no_such_domain" in srv.log_text()
    srv.stop()
    srv = relay["start"](recipient_domain_check="no")
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<alice@example.test>", 250)
    c.expect("RCPT TO:<x@nxdomain.test>", 250)
    c.expect("RCPT TO:<x@nullmx.test>", 556, "5.1.10")


def test_dsn_parameters_and_notify_success(relay):
    a = relay["peers"].start("127.0.0.2")
    srv = relay["start"]()
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<alice@example.test> RET=FULL ENVID=QQ+2B1", 250)
    c.expect("RCPT TO:<x@a-only.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+40a-only.test", 250)
    c.expect("RCPT TO:<y@a-only.test> NOTIFY=FOO", 501, "5.5.4")
    c.expect("RCPT TO:<y@a-only.test> ORCPT=nosemicolon", 501, "5.5.4")
    long_orcpt = "rfc822;" + "l" * 400 + "+40a-only.test"  # RFC 3461: RCPT may be 500 octets longer
    c.expect(f"RCPT TO:<y@a-only.test> ORCPT={long_orcpt}", 250)
    c.expect("RCPT TO:<y@A-ONLY.test>", 250)  # the same remote recipient again: kept once
    c.expect("RCPT TO:<z@a-only.test> NOTIFY=SUCCESS ORCPT=rfc822;z+0D+0AX-Injected:+20yes", 250)
    c.expect("NOOP " + "x" * 600, 500, "5.5.2")  # other commands keep max_command_line
    c.expect("DATA", 354)
    c.expect("Subject: dsn\r\n\r\nbody\r\n.", 250)
    wait_for(lambda: a.messages, what="delivery")
    assert sorted(a.messages[0][1]) == ["x@a-only.test", "y@a-only.test", "z@a-only.test"]
    msg = dsn_for(srv)  # aiosmtpd offers no DSN: Postern reports "relayed" itself
    per_msg, rcpts = report_fields(msg)
    # RFC 3461 6.3 (a), (d): the report gives them decoded from xtext; an escape that decodes to a
    # control character would break the report's fields, so that value stays as it was sent
    assert per_msg["Original-Envelope-Id"] == "QQ+1"
    assert rcpts[0]["Action"] == "relayed" and rcpts[0]["Original-Recipient"] == "rfc822;x@a-only.test"
    assert rcpts[1]["Original-Recipient"] == "rfc822;z+0D+0AX-Injected:+20yes"
    assert msg["Subject"] == "Successful Mail Delivery Report"


def test_local_delivery_with_notify_success_reports_delivered(relay):
    """RFC 3461 6.2.1: a recipient delivered here that asked NOTIFY=SUCCESS gets a "delivered" report
    to the sender, with the headers only (RET=FULL is for failures, 4.3); the others do not, and
    the null sender never gets one."""
    srv = relay["start"]()
    send(srv, ["RCPT TO:<bob@example.test> NOTIFY=SUCCESS ORCPT=rfc822;Bob+2Bme+40example.test",
               "RCPT TO:<j\u00f6rg@example.test> NOTIFY=FAILURE ORCPT=utf-8;J\u00f6rg@example.test"],
         body=b"Subject: tell me\r\n\r\nsecret body\r\n", mail_params=" RET=FULL ENVID=run+2B7 SMTPUTF8")
    msg = dsn_for(srv)
    per_msg, rcpts = report_fields(msg)
    assert per_msg["Original-Envelope-Id"] == "run+7"
    assert len(rcpts) == 1 and rcpts[0]["Final-Recipient"] == "rfc822; bob@example.test"
    assert rcpts[0]["Action"] == "delivered" and rcpts[0]["Status"] == "2.0.0"
    assert rcpts[0]["Original-Recipient"] == "rfc822;Bob+me@example.test"
    assert msg["Subject"] == "Successful Mail Delivery Report"
    text = human_part(msg)
    assert "Your message was delivered successfully" in text
    assert "<bob@example.test>: delivered" in text and "recipient's mailbox on mx.example.test" in text
    assert "postern explain" not in text  # no code to explain
    returned = [p for p in msg.walk() if p.get_content_type() == "text/rfc822-headers"]
    assert len(returned) == 1 and "Subject: tell me" in returned[0].get_content()
    assert b"secret body" not in msg.as_bytes() and b"Return-Path" not in returned[0].get_content().encode()
    assert len(srv.maildir_files("bob@example.test")) == len(srv.maildir_files("j\u00f6rg@example.test")) == 1
    # RFC 6533: UTF-8 in an ORCPT of type utf-8 only when MAIL had SMTPUTF8
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<alice@example.test>", 250)
    c.expect("RCPT TO:<bob@example.test> ORCPT=utf-8;b\u00f6b@example.test", 501, "5.5.4")
    c.expect("RCPT TO:<bob@example.test> ORCPT=utf-8;b\\x{F6}b@example.test", 250)
    c.expect("QUIT", 221)
    # the report itself came from the null sender: it asks for nothing back; and a null sender gets none
    send(srv, ["RCPT TO:<bob@example.test> NOTIFY=SUCCESS"], sender="")
    wait_for(lambda: len(srv.maildir_files("bob@example.test")) == 2, what="the second message")
    time.sleep(0.5)
    assert len(srv.maildir_files("alice@example.test")) == 1
    assert "event=dsn qid=" in srv.log_text()


def test_delivered_report_is_stored_before_the_250(relay):
    """The "delivered" report is committed before the 250 of the message it reports on: a crash
    (SIGKILL) the moment the 250 arrives loses neither the message nor its report."""
    srv = relay["start"]()
    for round_ in range(1, 4):
        c = srv.connect()
        c.expect("EHLO client.example", 250)
        c.expect("MAIL FROM:<alice@example.test>", 250)
        c.expect("RCPT TO:<bob@example.test> NOTIFY=SUCCESS", 250)
        c.expect("DATA", 354)
        c.send(f"Subject: round {round_}\r\n\r\nhello\r\n.\r\n".encode())
        code, lines = c.reply()
        srv.kill9()  # at once: the report's own commit takes a flush, longer than this
        assert code == 250, lines
        srv.start()
        assert len(srv.maildir_files("bob@example.test")) == round_
        reports = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
                   for f in srv.maildir_files("alice@example.test")]
        assert len(reports) == round_, f"round {round_}: the report of an acknowledged message was lost"
        assert all(r["Subject"] == "Successful Mail Delivery Report" for r in reports)
    c = srv.connect()  # a client gone before its 250: the message and its report are still stored
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<alice@example.test>", 250)
    c.expect("RCPT TO:<bob@example.test> NOTIFY=SUCCESS", 250)
    c.expect("DATA", 354)
    c.send(b"Subject: gone\r\n\r\nhello\r\n.\r\n")
    c.close()
    wait_for(lambda: len(srv.maildir_files("alice@example.test")) == 4, what="the fourth report")
    wait_for(lambda: "event=accepted_client_gone" in srv.log_text(), what="the transaction's log line")


def test_dsn_parameters_passed_on_to_a_peer_that_offers_dsn(relay):
    """RFC 3461 4: relaying to a server that offers DSN, RET, ENVID, NOTIFY and ORCPT go on as
    received (xtext as it came), and the duty to report success goes with them: Postern sends no
    "relayed" report for NOTIFY=SUCCESS."""
    peer = scripted(relay, ehlo=b"250-mx.scripted.test\r\n250-PIPELINING\r\n250 DSN\r\n",
                    reply=lambda l, n: b"354 go\r\n" if l == "DATA" else b"250 2.0.0 ok\r\n")
    srv = relay["start"]()
    send(srv, ["RCPT TO:<x@scripted.test> NOTIFY=DELAY,SUCCESS ORCPT=rfc822;x+2Bt+40scripted.test",
               "RCPT TO:<y@scripted.test> NOTIFY=NEVER", "z@scripted.test"],
         mail_params=" RET=HDRS ENVID=QQ+2B1")
    wait_for(lambda: peer.bodies, what="delivery")
    mail = [l for l in peer.lines if l.startswith("MAIL")]
    assert len(mail) == 1 and mail[0].startswith("MAIL FROM:<alice@example.test> ")
    assert mail[0].endswith(" RET=HDRS ENVID=QQ+2B1")
    rcpts = [l for l in peer.lines if l.startswith("RCPT")]
    assert rcpts == ["RCPT TO:<x@scripted.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;x+2Bt+40scripted.test",
                     "RCPT TO:<y@scripted.test> NOTIFY=NEVER", "RCPT TO:<z@scripted.test>"]
    wait_for(lambda: queue_empty(srv), what="the queue file removed")
    time.sleep(0.5)
    assert srv.maildir_files("alice@example.test") == []  # the peer reports success, not Postern


def test_notify_never_and_null_sender_get_no_bounce(relay):
    def reply(line, n):
        if line.startswith("RCPT"):
            return b"550 5.1.1 no\r\n"
        return b"250 ok\r\n"
    scripted(relay, reply=reply)
    srv = relay["start"]()
    send(srv, ["RCPT TO:<a@scripted.test> NOTIFY=NEVER"])
    send(srv, ["b@scripted.test"], sender="")
    wait_for(lambda: queue_empty(srv) and srv.log_text().count("status=bounced") == 2, what="both bounced")
    time.sleep(0.5)
    assert srv.maildir_files("alice@example.test") == []


@pytest.mark.parametrize("outcome", ["failed", "relayed"])
def test_report_that_cannot_be_stored_is_retried_without_sending_again(relay, outcome):
    """A report that cannot be stored yet - the sender's Maildir is read-only -: for a recipient
    refused for good (550), or one with NOTIFY=SUCCESS delivered to a peer without DSN ("relayed",
    RFC 3461 4.1). The message is kept and the report tried again at each attempt, but the peer is
    never asked again for that recipient (RFC 5321 4.2.1: a 5yz is not repeated; a 250 is not
    resent), also after a restart. Once the Maildir is writable, the sender gets one report and
    the queue is empty."""
    def reply(line, n):
        if line.startswith("RCPT") and outcome == "failed":
            return b"550 5.1.1 <gone@scripted.test>: no such user\r\n"
        return b"354 go\r\n" if line == "DATA" else b"250 2.0.0 ok\r\n"
    peer = scripted(relay, reply=reply)
    srv = relay["start"]()
    c = srv.connect()  # alice's Maildir, made now, then made read-only
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<>", 250)
    c.expect("RCPT TO:<alice@example.test>", 250)
    c.expect("DATA", 354)
    c.expect("Subject: first\r\n\r\nx\r\n.", 250)
    new = srv.mail_dir / "example.test" / "alice" / "new"
    new.chmod(0o555)
    try:
        send(srv, ["RCPT TO:<gone@scripted.test> NOTIFY=SUCCESS,FAILURE"])
        wait_for(lambda: srv.log_text().count("event=dsn_failed") >= 3, what="three failed reports")
        listing = postern(srv, "queue", "list").stdout
        words = {"failed": "failed, report pending: 550 5.1.1", "relayed": "delivered, report pending: 250 2.0.0"}
        assert f"<gone@scripted.test>  {words[outcome]}" in listing, listing
        srv.stop()  # the state file carries it over a restart
    finally:
        new.chmod(0o700)
    srv.start()
    wait_for(lambda: queue_empty(srv), what="the report stored and the queue empty")
    assert [l for l in peer.lines if l.startswith("RCPT")] == ["RCPT TO:<gone@scripted.test>"]
    texts = [b for b in peer.bodies if b != b".\r\n"]  # a lone dot ends a DATA with no recipient
    assert len(texts) == (1 if outcome == "relayed" else 0)
    reports = [p for p in srv.maildir_files("alice@example.test") if b"Subject: first" not in p.read_bytes()]
    assert len(reports) == 1
    _, rcpts = report_fields(email.message_from_bytes(reports[0].read_bytes(), policy=email.policy.default))
    assert rcpts[0]["Action"] == outcome
    assert rcpts[0]["Status"] == ("5.1.1" if outcome == "failed" else "2.0.0")


def test_kill9_with_100_queued_then_all_delivered(relay):
    srv = relay["start"](retry_schedule="1s")
    for i in range(100):  # nothing listens yet: every attempt defers
        send(srv, ["bob@two-mx.test"], body=f"Subject: n{i}\r\n\r\nmessage {i}\r\n".encode())
    assert len(list((srv.spool_dir / "queue").iterdir())) == 100
    srv.kill9()
    mx = relay["peers"].start("127.0.0.2")
    srv.start()
    wait_for(lambda: len(mx.messages) >= 100, timeout=60, what="100 deliveries")
    wait_for(lambda: queue_empty(srv), what="queue empty")
    subjects = sorted(m[2].split(b"Subject: ")[1].split(b"\r\n")[0] for m in mx.messages)
    assert len(set(subjects)) == 100


def postern(srv, *args):
    return subprocess.run([str(BIN), "-c", str(srv.conf_path), *args], capture_output=True, text=True, timeout=20)


def test_unreachable_destination_is_suspended_not_tried_per_message(relay):
    """Nothing listens on a-only.test's only address: the first message finds that out, and the
    other messages for the domain are deferred at once until the first retry interval has passed
    (Postfix's dead destinations), instead of each trying every exchanger - with timeouts, hours for
    a big queue. `postern queue flush` lifts the suspension."""
    srv = relay["start"](retry_schedule="1h", destination_concurrency=1)
    qids = [send(srv, [f"r{i}@a-only.test"]) for i in range(6)]
    wait_for(lambda: srv.log_text().count("event=delivery ") == 6, what="six deferrals")
    log = srv.log_text()
    assert log.count("event=smtp_client_failure") == 1  # one connection attempt in all
    assert log.count("event=destination_suspended domain=a-only.test seconds=300 ") == 1
    assert log.count("status=deferred detail=\"4.4.1 delivery to a-only.test temporarily suspended: cannot "
                     "connect to a-only.test[127.0.0.2]") == 5
    out = postern(srv, "queue", "list")
    assert "temporarily suspended" in out.stdout and all(q in out.stdout for q in qids)
    assert postern(srv, "queue", "flush").returncode == 0
    wait_for(lambda: srv.log_text().count("event=delivery ") == 12, what="six more deferrals after the flush")
    assert srv.log_text().count("event=smtp_client_failure") == 2  # tried again once, then suspended again
    assert srv.log_text().count("event=destination_suspended") == 2


def test_queue_commands(relay):
    srv = relay["start"](retry_schedule="1h")
    qid = send(srv, ["y@servfail.test"])
    state = srv.spool_dir / "state" / qid
    wait_for(lambda: state.exists(), what="first attempt")
    out = postern(srv, "queue", "list")
    assert out.returncode == 0 and qid in out.stdout and "<alice@example.test>" in out.stdout
    assert "SERVFAIL" in out.stdout and "1 message in the queue" in out.stdout
    show = postern(srv, "queue", "show", qid)
    assert "attempts:   1" in show.stdout and "Subject: relay test" in show.stdout
    # -c FILE may come after the sub-command too, as administrators tend to type it
    after = subprocess.run([str(BIN), "queue", "show", qid, "-c", str(srv.conf_path)], capture_output=True,
                           text=True, timeout=20)
    same = lambda text: [l for l in text.splitlines() if not l.startswith("age:")]  # noqa: E731
    assert after.returncode == 0 and same(after.stdout) == same(show.stdout)
    assert postern(srv, "queue", "hold", qid).returncode == 0
    assert (srv.spool_dir / "hold" / qid).exists()
    assert "(held)" in postern(srv, "queue", "list").stdout
    assert postern(srv, "queue", "release", qid).returncode == 0
    assert postern(srv, "queue", "flush").returncode == 0
    wait_for(lambda: "attempts 2" in state.read_text(), what="a flushed retry")
    assert postern(srv, "queue", "delete", qid).returncode == 0
    assert "0 messages in the queue" in postern(srv, "queue", "list").stdout
    assert postern(srv, "queue", "show", "ZZZ").returncode == 2
    # a file that cannot be read is named, not left out of the count
    (srv.spool_dir / "hold" / "BAD0001").write_bytes(b"POSTERN-QUEUE 2\nid BAD0001\n")
    out = postern(srv, "queue", "list")
    assert out.returncode == 1 and "0 messages in the queue, and 1 file that cannot be read" in out.stdout
    assert "hold/BAD0001: queue file has no message line" in out.stderr
    show = postern(srv, "queue", "show", "BAD0001")
    assert show.returncode == 1 and "queue file has no message line" in show.stderr
    wait_for(lambda: "event=queue_scan" in srv.log_text())


def test_queue_bulk_commands_by_id_list_sender_recipient_and_all(relay):
    """After a spam run an administrator removes messages in bulk: several ids, ids on stdin, every
    message from a sender or for a recipient or domain (addresses in any case or IDN spelling),
    or ALL; `queue list` takes the same selection."""
    srv = relay["start"](retry_schedule="1h")
    spam = [send(srv, [f"v{i}@servfail.test"], sender="Hacked@Example.test") for i in range(3)]
    ham = send(srv, ["friend@servfail.test"])
    idn = send(srv, ["leser@b\u00fccher.test"], sender="", mail_params=" SMTPUTF8")
    wait_for(lambda: len(list((srv.spool_dir / "state").iterdir())) == 5, what="first attempts")
    listed = postern(srv, "queue", "list", "--from", "hacked@example.test")
    assert all(q in listed.stdout for q in spam) and ham not in listed.stdout and "3 messages selected" in listed.stdout
    assert postern(srv, "queue", "hold", "--from", "<HACKED@example.test>").stdout.endswith("-- 3 messages held\n")
    assert sorted(p.name for p in (srv.spool_dir / "hold").iterdir()) == sorted(spam)
    released = postern(srv, "queue", "release", spam[0], spam[1])
    assert released.returncode == 0 and released.stdout == f"{spam[0]}: released\n{spam[1]}: released\n"
    gone = subprocess.run([str(BIN), "-c", str(srv.conf_path), "queue", "delete", "-"], input=f"{spam[0]}\n {spam[1]} \n\n",
                          capture_output=True, text=True, timeout=20)
    assert gone.returncode == 0 and gone.stdout.count("deleted") == 2
    bad = subprocess.run([str(BIN), "-c", str(srv.conf_path), "queue", "delete", "-"], input=f"{ham}\nnot-an-id\n",
                         capture_output=True, text=True, timeout=20)
    assert bad.returncode == 2 and "stdin line 2: 'not-an-id' is not a queue id; nothing changed" in bad.stderr
    assert (srv.spool_dir / "queue" / ham).exists()
    assert "1 message selected" in postern(srv, "queue", "list", "--to", "@xn--bcher-kva.test").stdout
    assert "1 message selected" in postern(srv, "queue", "list", "--from", "<>", "--to", "LESER@B\u00dcCHER.test").stdout
    assert postern(srv, "queue", "delete", "--to", "@b\u00fccher.test").stdout.endswith("-- 1 message deleted\n")
    assert postern(srv, "queue", "delete", "--to", "nobody@servfail.test").stdout == "-- 0 messages deleted\n"
    assert postern(srv, "queue", "delete", "--to", "not an address").returncode == 2
    assert postern(srv, "queue", "delete", spam[2], "x").returncode == 2  # nothing changed
    assert (srv.spool_dir / "hold" / spam[2]).exists()
    assert postern(srv, "queue", "delete", "ALL").stdout.endswith("-- 2 messages deleted\n")  # queued and held
    assert "0 messages in the queue" in postern(srv, "queue", "list").stdout
    wait_for(lambda: srv.log_text().count("event=queue_scan") >= 2, what="the server re-reading its queue")


def test_queue_summary_per_destination_domain(relay):
    """`queue summary`: which destination backs up - messages (once per domain), recipients and the
    oldest's age per domain, the busiest first; IDN spellings are one domain."""
    srv = relay["start"](retry_schedule="1h")
    send(srv, ["v1@servfail.test", "v2@servfail.test"])
    held = send(srv, ["w@SERVFAIL.test", "leser@xn--bcher-kva.test"])
    wait_for(lambda: len(list((srv.spool_dir / "state").iterdir())) == 2, what="first attempts")
    assert postern(srv, "queue", "hold", held).returncode == 0
    out = postern(srv, "queue", "summary")
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and lines[0].split() == ["DOMAIN", "MESSAGES", "RCPTS", "OLDEST"]
    assert lines[1].split()[:3] == ["servfail.test", "2", "3"] and lines[1].endswith("(some held)")
    assert lines[2].split()[:3] == ["b\u00fccher.test", "1", "1"]
    assert lines[3] == "-- 2 domains, 2 messages in the queue"


def hold_while_sending(relay, reply, rcpt):
    """Sends one message to the scripted peer and holds it once the peer has its text (the peer's
    reply to <END> must take a while). Returns (peer, server, queue id)."""
    peer = scripted(relay, reply=reply)
    srv = relay["start"]()
    qid = send(srv, [rcpt])
    wait_for(lambda: peer.bodies, what="the text at the peer")
    assert postern(srv, "queue", "hold", qid).returncode == 0
    return peer, srv, qid


def test_hold_during_an_attempt_keeps_its_outcome(relay):
    """`queue hold` while the message is being sent: the delivery still counts - a release
    later must not send it again."""
    def reply(line, n):
        if line == "<END>":
            time.sleep(2)  # the hold comes meanwhile
        return b"354 go\r\n" if line == "DATA" else b"250 2.0.0 ok\r\n"
    peer, srv, qid = hold_while_sending(relay, reply, "held@scripted.test")
    wait_for(lambda: "status=sent" in srv.log_text(), what="the delivery")
    wait_for(lambda: not (srv.spool_dir / "hold" / qid).exists(), what="the delivered message gone from hold/")
    assert postern(srv, "queue", "release", qid).returncode == 1  # nothing left to release
    time.sleep(2)
    assert len(peer.bodies) == 1


def test_hold_and_release_during_an_attempt_then_retried(relay):
    """Held and released while an attempt runs (which then defers): the message is retried, not
    forgotten until the next restart."""
    def reply(line, n):
        if line == "<END>":
            if n == 0:
                time.sleep(2)
                return b"451 4.3.0 try later\r\n"
        return b"354 go\r\n" if line == "DATA" else b"250 2.0.0 ok\r\n"
    peer, srv, qid = hold_while_sending(relay, reply, "again@scripted.test")
    assert postern(srv, "queue", "release", qid).returncode == 0
    wait_for(lambda: len(peer.bodies) == 2, timeout=15, what="the retry")
    wait_for(lambda: queue_empty(srv), what="queue empty")


def test_explain_command():
    out = subprocess.run([str(BIN), "explain", "550", "5.1.1"], capture_output=True, text=True).stdout
    assert "5.1.1" in out and "typos" in out and "Key differences" in out
    out = subprocess.run([str(BIN), "explain", "556"], capture_output=True, text=True).stdout
    assert "null MX" in out
    out = subprocess.run([str(BIN), "explain", "4.4.7", "5.1.10"], capture_output=True, text=True).stdout
    assert "temporary" in out and "permanent" in out
    out = subprocess.run([str(BIN), "explain", "5.6.3"], capture_output=True, text=True).stdout
    assert "Conversion required but not supported" in out and "8BITMIME" in out
    assert subprocess.run([str(BIN), "explain", "hello"], capture_output=True).returncode == 2
    pasted = "450 4.2.0 Mailbox temporarily unavailable, try again later"  # a reply line as a log shows it
    out = subprocess.run([str(BIN), "explain", pasted], capture_output=True, text=True).stdout
    assert out.startswith("450 4.2.0  Mailbox temporarily unavailable") and "event=mailbox_held" in out
    # another server's line with the same codes as a Postern reply is not explained as Postern's
    out = subprocess.run([str(BIN), "explain", "550 5.5.2 Syntax error in command"], capture_output=True,
                         text=True).stdout
    assert "bare CR or LF" not in out and "Source:   RFC 3463" in out
    out = subprocess.run([str(BIN), "explain", "550 4.7.1 go away"], capture_output=True, text=True)
    assert out.returncode == 0 and "permanent failure" in out.stdout and "the reply code decides" in out.stdout
    # two rows whose words begin alike: the one the whole line is
    plain = "550 5.7.23 SPF validation failed: x.example does not allow mail from [192.0.2.1]"
    out = subprocess.run([str(BIN), "explain", plain], capture_output=True, text=True).stdout
    assert out.startswith("550 5.7.23  SPF validation failed: %s does not allow mail from [%s]\n"), out
    out = subprocess.run([str(BIN), "explain", plain + "; x.example explains: see https://x.example/spf"],
                         capture_output=True, text=True).stdout
    assert out.startswith("550 5.7.23  SPF validation failed: %s does not allow mail from [%s]; %s explains"), out


def test_delay_warning_then_expiry_bounce(relay):
    srv = relay["start"](delay_warning_time="1s", max_queue_lifetime="3s", retry_schedule="1s")
    send(srv, ["late@a-only.test"])  # nothing listens on 127.0.0.2: every attempt defers at once
    first = dsn_for(srv)
    assert first["Subject"] == "Delayed Mail (still being retried)"
    per_msg, rcpts = report_fields(first)
    assert rcpts[0]["Action"] == "delayed" and rcpts[0]["Status"] == "4.4.1"
    assert "you do not need to resend" in human_part(first)
    # RFC 3464 2.3.9: when the attempts end - arrival + max_queue_lifetime; said in words too
    until = email.utils.parsedate_to_datetime(rcpts[0]["Will-Retry-Until"])
    assert (until - email.utils.parsedate_to_datetime(per_msg["Arrival-Date"])).total_seconds() == 3
    assert f"It tries until {rcpts[0]['Will-Retry-Until']}; if the message is still not\ndelivered then, it gives up" \
        in human_part(first)
    wait_for(lambda: len(srv.maildir_files("alice@example.test")) == 2, timeout=20, what="the expiry bounce")
    last = email.message_from_bytes(srv.maildir_files("alice@example.test")[-1].read_bytes(),
                                    policy=email.policy.default)
    if last["Subject"] != "Undelivered Mail Returned to Sender":  # file names sort by time; be safe
        last = first if first["Subject"] == "Undelivered Mail Returned to Sender" else last
    _, rcpts = report_fields(last)
    assert rcpts[0]["Action"] == "failed" and rcpts[0]["Status"] == "4.4.7" and "Will-Retry-Until" not in rcpts[0]
    assert "cannot connect to a-only.test[127.0.0.2]" in rcpts[0]["Diagnostic-Code"]
    assert "not delivered in 3 seconds of trying" in rcpts[0]["Diagnostic-Code"]
    wait_for(lambda: queue_empty(srv), what="queue empty")


def test_smtputf8_message_to_peer_without_it_bounces_5_6_7(relay):
    peer = scripted(relay)  # its EHLO offers PIPELINING and 8BITMIME only
    srv = relay["start"]()
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<alice@example.test> SMTPUTF8 RET=FULL", 250)
    c.expect("RCPT TO:<j\u00f6rg@scripted.test>", 250)
    c.expect("DATA", 354)
    c.expect("Subject: utf8\r\n\r\nhej\r\n.", 250)
    msg = dsn_for(srv)
    _, rcpts = report_fields(msg)
    assert rcpts[0]["Status"] == "5.6.7"
    full = [p for p in msg.walk() if p.get_content_type() == "message/rfc822"]
    assert full, "RET=FULL returns the whole message"
    assert all(not l.startswith("MAIL") for l in peer.lines)  # nothing was attempted


NO_8BITMIME = b"250-mx.scripted.test\r\n250 PIPELINING\r\n"


EIGHT_BIT_MULTIPART = ("From: alice@example.test\r\nSubject: 8bit\r\nMIME-Version: 1.0\r\n"
                      "Content-Type: multipart/mixed; boundary=\"b1\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                      "--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                      "d\u00e9j\u00e0 vu = " + "\u00e9" * 60 + "\r\n.dot line  \r\n"
                      "--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                      "AAECAwQ=\r\n--b1--\r\n").encode()


def unstuffed(wire):
    """The message a scripted peer got, as its text: CRLF.CRLF taken off, dot-stuffing undone."""
    lines = wire[:-len(b".\r\n")].split(b"\r\n")
    return b"\r\n".join(l[1:] if l.startswith(b".") else l for l in lines)


def test_8bit_message_to_peer_without_8bitmime_goes_as_7bit_mime(relay):
    """RFC 6152 section 3: a peer that does not offer 8BITMIME gets 8-bit text converted to 7-bit
    MIME: the 8-bit part as quoted-printable (lines within 76), the rest as it was. Python's email
    package decodes what the peer got back to the original text."""
    peer, seen = mail_lines_peer(relay, ehlo=NO_8BITMIME)
    srv = relay["start"]()
    send(srv, ["eight@scripted.test"], mail_params=" BODY=8BITMIME", body=EIGHT_BIT_MULTIPART)
    wait_for(lambda: peer.bodies, what="delivery of the converted message")
    assert seen and "BODY=" not in seen[0], seen
    wire = peer.bodies[0]
    assert max(wire) < 0x80, "only US-ASCII on the wire"
    assert max(len(l) for l in wire.split(b"\r\n")) <= 998
    got = email.message_from_bytes(unstuffed(wire), policy=email.policy.default)
    text, blob = [p for p in got.walk() if not p.is_multipart()]
    assert text["Content-Transfer-Encoding"] == "quoted-printable"
    assert max(len(l) for l in text.get_payload().splitlines()) <= 76
    # the line break before a delimiter belongs to the delimiter (RFC 2046 5.1.1), not to the text
    assert text.get_content().replace("\r\n", "\n") == "d\u00e9j\u00e0 vu = " + "\u00e9" * 60 + "\n.dot line  "
    assert blob["Content-Transfer-Encoding"] == "base64" and blob.get_content() == bytes(range(5))
    assert "Content-Transfer-Encoding" not in got  # the multipart's own 8bit label is gone
    assert "event=smtp_client_converted" in srv.log_text() and "reason=8bit" in srv.log_text()


def test_line_over_998_octets_goes_quoted_printable(relay):
    """RFC 5321 4.5.3.1.6 / RFC 5322 2.1.1: no text line over 998 octets goes to any peer (this one
    offers 8BITMIME): the part that has one is sent quoted-printable; the 8-bit part beside it, with
    short lines, stays as it was."""
    peer, seen = mail_lines_peer(relay)
    srv = relay["start"]()
    long_line = "0123456789" * 150
    body = ("Subject: long\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n"
            "--b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nd\u00e9j\u00e0 vu\r\n"
            "--b2\r\nContent-Type: text/html\r\n\r\n<p>" + long_line + "</p>\r\n--b2--\r\n").encode()
    send(srv, ["long@scripted.test"], mail_params=" BODY=8BITMIME", body=body)
    wait_for(lambda: peer.bodies, what="delivery of the message with a long line")
    wire = peer.bodies[0]
    assert max(len(l) for l in wire.split(b"\r\n")) <= 998
    assert "d\u00e9j\u00e0 vu\r\n--b2".encode() in wire  # 8-bit, as it was
    assert seen and seen[0].endswith(" BODY=8BITMIME"), seen
    got = email.message_from_bytes(unstuffed(wire), policy=email.policy.default)
    html = [p for p in got.walk() if p.get_content_type() == "text/html"][0]
    assert html["Content-Transfer-Encoding"] == "quoted-printable"
    assert html.get_content() == "<p>" + long_line + "</p>"
    assert "event=smtp_client_converted" in srv.log_text() and "reason=long_lines" in srv.log_text()


def test_long_header_line_goes_as_it_is(relay):
    """A header field over 998 octets cannot be encoded (folding it is its author's business):
    the message goes unchanged, as it came, and nothing says it was converted."""
    peer, _ = mail_lines_peer(relay)
    srv = relay["start"]()
    body = ("X-Long: " + "v" * 1200 + "\r\nSubject: long header\r\n\r\nshort body\r\n").encode()
    send(srv, ["longhdr@scripted.test"], body=body)
    wait_for(lambda: peer.bodies, what="delivery of the message with a long header field")
    assert body in unstuffed(peer.bodies[0])
    assert "event=smtp_client_converted" not in srv.log_text()


def test_8bit_header_to_peer_without_8bitmime_bounces_5_6_3(relay):
    """8-bit octets in a header field cannot be made 7-bit (only the author can encode them,
    RFC 2047): the message fails for good, with a DSN that says why, and nothing is sent."""
    peer = scripted(relay, ehlo=NO_8BITMIME)
    srv = relay["start"]()
    send(srv, ["eight@scripted.test"], mail_params=" BODY=8BITMIME",
         body="Subject: d\u00e9j\u00e0 vu\r\n\r\nd\u00e9j\u00e0 vu\r\n".encode())
    msg = dsn_for(srv)
    _, rcpts = report_fields(msg)
    assert rcpts[0]["Status"] == "5.6.3"
    assert "offers no 8BITMIME" in rcpts[0]["Diagnostic-Code"]
    assert "a header field has 8-bit characters" in rcpts[0]["Diagnostic-Code"]
    assert "RFC 2047" in human_part(msg)  # what to do, from the explain table
    assert not any(l.startswith("MAIL") for l in peer.lines)  # nothing was attempted


def refuses_nobody():
    """A scripted peer's replies: 550 5.1.1 to a recipient named nobody (then DATA refused), the
    rest accepted - so a message for nobody bounces and its report to the sender is taken."""
    def reply(line, n):
        if line.startswith("RCPT"):
            reply.rcpt_ok = "nobody" not in line
            return b"250 ok\r\n" if reply.rcpt_ok else b"550 5.1.1 no such user\r\n"
        if line == "DATA":
            return b"354 go\r\n" if reply.rcpt_ok else b"554 5.5.1 no valid recipients\r\n"
        return b"250 2.0.0 ok\r\n"
    reply.rcpt_ok = False
    return reply


def test_full_bounce_of_8bit_message_to_sender_without_8bitmime(relay):
    """The RET=FULL report of an 8-bit message carries it 8-bit; the sender's mail server offers
    no 8BITMIME, so the report goes converted, the returned message's text quoted-printable."""
    reply = refuses_nobody()
    peer = scripted(relay, reply=reply, ehlo=NO_8BITMIME)
    srv = relay["start"]()
    send(srv, ["nobody@scripted.test"], sender="sender@scripted.test", mail_params=" BODY=8BITMIME RET=FULL",
         body="Subject: returned\r\n\r\nd\u00e9j\u00e0 vu\r\n".encode())
    wait_for(lambda: peer.bodies, what="the report at the sender's mail server")
    assert "RCPT TO:<sender@scripted.test>" in peer.lines
    wire = peer.bodies[0]
    assert max(wire) < 0x80, "only US-ASCII on the wire"
    assert b"Content-Transfer-Encoding: 8bit" not in wire  # the labels went with the 8-bit octets
    report = email.message_from_bytes(unstuffed(wire), policy=email.policy.default)
    _, rcpts = report_fields(report)
    assert rcpts[0]["Status"] == "5.1.1"
    returned = [p for p in report.walk() if p.get_content_type() == "message/rfc822"][0].get_payload()[0]
    assert returned["Subject"] == "returned"
    assert returned.get_content_charset() == "unknown-8bit"  # RFC 1428: 8-bit, not declared as what
    assert returned.get_payload(decode=True) == "d\u00e9j\u00e0 vu\r\n".encode()


def mail_lines_peer(relay, **kw):
    """A scripted peer that accepts everything; returns it and the list of MAIL lines it got."""
    seen = []

    def reply(line, n):
        if line.startswith("MAIL"):
            seen.append(line)
        return b"354 go\r\n" if line == "DATA" else b"250 2.0.0 ok\r\n"
    return scripted(relay, reply=reply, **kw), seen


def test_undeclared_8bit_text_is_sent_with_body_8bitmime(relay):
    """The text has 8-bit octets though its sender did not declare BODY=8BITMIME: it goes out
    labelled as what it is."""
    peer, seen = mail_lines_peer(relay)  # offers 8BITMIME
    srv = relay["start"]()
    send(srv, ["undeclared@scripted.test"], body="Subject: 8bit\r\n\r\nna\u00efve\r\n".encode())
    wait_for(lambda: peer.bodies, what="delivery of the undeclared 8-bit message")
    assert seen and seen[0].endswith(" BODY=8BITMIME"), seen


def test_declared_8bitmime_with_ascii_text_goes_to_peer_without_it(relay):
    """BODY=8BITMIME declared, every octet US-ASCII: nothing to refuse; sent without the label."""
    peer, seen = mail_lines_peer(relay, ehlo=NO_8BITMIME)
    srv = relay["start"]()
    send(srv, ["ascii@scripted.test"], mail_params=" BODY=8BITMIME")
    wait_for(lambda: peer.bodies, what="delivery of the declared US-ASCII message")
    assert seen and "BODY=" not in seen[0], seen


def test_connection_reuse_and_destination_concurrency(relay):
    def reply(line, n):
        if line == "<END>":
            time.sleep(0.1)  # slow enough that messages queue up for the destination
        return b"354 go\r\n" if line == "DATA" else b"250 2.0.0 ok\r\n"
    peer = scripted(relay, reply=reply)
    srv = relay["start"](destination_concurrency=2)
    for i in range(12):
        send(srv, ["r@scripted.test"], body=f"Subject: {i}\r\n\r\nx\r\n".encode())
    wait_for(lambda: len(peer.bodies) == 12, timeout=30, what="12 deliveries")
    assert peer.max_active <= 2, peer.max_active
    assert peer.connections < 12, "each connection carried more than one message"
    wait_for(lambda: queue_empty(srv), what="queue empty")


def test_recipients_split_by_destination_recipient_limit(relay):
    """5 recipients at one domain, limit 2: three transactions (2+2+1), all in the first attempt."""
    peer = scripted(relay, reply=lambda l, n: b"354 go\r\n" if l == "DATA" else b"250 2.0.0 ok\r\n")
    srv = relay["start"](destination_recipient_limit=2)
    rcpts = [f"r{i}@scripted.test" for i in range(5)]
    qid = send(srv, rcpts)
    wait_for(lambda: len(peer.bodies) == 3, what="three transactions")
    assert sum(l.startswith("MAIL FROM") for l in peer.lines) == 3
    assert sorted(l for l in peer.lines if l.startswith("RCPT")) == sorted(f"RCPT TO:<{r}>" for r in rcpts)
    wait_for(lambda: f"event=queue_done qid={qid} attempts=1" in srv.log_text(), what="done in one attempt")


def test_peer_recipient_limit_452_rest_sent_at_once(relay):
    """A peer taking 2 RCPTs per transaction (452 4.5.3 past them): the rest go in further
    transactions at once, not at the next retry."""
    def reply(line, n):
        if line.startswith("MAIL"):
            reply.rcpts = 0
        elif line.startswith("RCPT"):
            reply.rcpts += 1
            if reply.rcpts > 2:
                return b"452 4.5.3 too many recipients\r\n"
        return b"354 go\r\n" if line == "DATA" else b"250 2.0.0 ok\r\n"
    reply.rcpts = 0
    peer = scripted(relay, reply=reply)
    srv = relay["start"](retry_schedule="1h")
    qid = send(srv, [f"r{i}@scripted.test" for i in range(5)])
    wait_for(lambda: len(peer.bodies) == 3, what="three transactions")
    wait_for(lambda: f"event=queue_done qid={qid} attempts=1" in srv.log_text(), what="done in one attempt")
    assert srv.log_text().count("event=delivery_continued") == 2


def test_opportunistic_starttls_outbound(relay, tmp_path):
    import ssl
    d = tmp_path
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=mx1.two-mx.test", "-keyout", str(d / "k.pem"), "-out", str(d / "c.pem")],
                   check=True, capture_output=True)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(d / "c.pem", d / "k.pem")
    sink = Sink()
    c = Controller(sink, hostname="127.0.0.2", port=relay["port"], tls_context=ctx, require_starttls=True)
    c.start()
    relay["peers"].controllers["127.0.0.2"] = c
    srv = relay["start"]()
    send(srv, ["tls@two-mx.test"])
    wait_for(lambda: sink.messages, what="delivery over TLS")
    log = srv.log_text()
    assert "event=smtp_client_tls host=mx1.two-mx.test[127.0.0.2] tls=TLSv1.3" in log and "verified=no" in log


def test_helo_fallback_and_size_limit(relay):
    peer = scripted(relay, ehlo=b"502 5.5.1 EHLO not implemented\r\n",
                    reply=lambda l, n: b"354 go\r\n" if l == "DATA" else b"250 ok\r\n")
    srv = relay["start"]()
    send(srv, ["old@scripted.test"])
    wait_for(lambda: peer.bodies, what="delivery after HELO")
    assert any(l.startswith("HELO ") for l in peer.lines)
    assert not any(" SIZE=" in l or "BODY=" in l for l in peer.lines)  # no extensions after HELO


def test_message_over_peer_size_bounces_without_sending(relay):
    peer = scripted(relay, ehlo=b"250-mx.scripted.test\r\n250 SIZE 100\r\n")
    srv = relay["start"]()
    send(srv, ["big@scripted.test"], body=b"Subject: big\r\n\r\n" + b"x" * 300 + b"\r\n")
    _, rcpts = report_fields(dsn_for(srv))
    assert rcpts[0]["Status"] == "5.3.4"
    assert not any(l.startswith("MAIL") for l in peer.lines)


@pytest.mark.parametrize("offer", ["SIZE", "SIZE 0"])
def test_size_without_a_limit_still_gets_the_size_parameter(relay, offer):
    """RFC 1870: SIZE with no number or 0 means no fixed limit, but the peer still takes SIZE=, with
    which it can refuse at once what it has no room for now."""
    peer = scripted(relay, ehlo=b"250-mx.scripted.test\r\n250 " + offer.encode() + b"\r\n",
                    reply=lambda l, n: b"354 go\r\n" if l == "DATA" else b"250 ok\r\n")
    srv = relay["start"]()
    body = b"Subject: sized\r\n\r\n" + b"x" * 3000 + b"\r\n"
    send(srv, ["sized@scripted.test"], body=body)
    wait_for(lambda: peer.bodies, what="delivery")
    mail = [l for l in peer.lines if l.startswith("MAIL")]
    size = int(mail[0].split(" SIZE=")[1].split()[0])
    assert len(body) < size < len(body) + 1000  # with the Received field the server adds


def test_extension_listed_after_a_long_ehlo_reply_is_seen(relay):
    """Each EHLO line may be 512 octets and a reply 100 lines: an extension after 2 KB of others
    (here SIZE 100, last) must still be seen - it was lost when only the reply's first 1 KiB of
    text was read."""
    junk = b"".join(b"250-X-FILLER-%d " % i + b"a" * 450 + b"\r\n" for i in range(5))
    peer = scripted(relay, ehlo=b"250-mx.scripted.test " + b"g" * 400 + b"\r\n" + junk + b"250 SIZE 100\r\n")
    srv = relay["start"]()
    send(srv, ["big@scripted.test"], body=b"Subject: big\r\n\r\n" + b"x" * 300 + b"\r\n")
    _, rcpts = report_fields(dsn_for(srv))
    assert rcpts[0]["Status"] == "5.3.4"
    assert not any(l.startswith("MAIL") for l in peer.lines)


def test_extensions_offered_before_starttls_are_forgotten_after_it(relay, tmp_path):
    """RFC 3207 4.2: after TLS the client MUST discard what it learnt before (the extension list).
    A peer offering SIZE 100, DSN and PIPELINING before TLS and only 8BITMIME after gets a 300-octet
    message with no SIZE or DSN parameter; before, the stale SIZE 100 bounced it (5.3.4)."""
    import ssl
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=mx.scripted.test", "-keyout", str(tmp_path / "k.pem"), "-out", str(tmp_path / "c.pem")],
                   check=True, capture_output=True)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    peer = scripted(relay, tls=ctx,
                    ehlo=b"250-mx.scripted.test\r\n250-PIPELINING\r\n250-DSN\r\n250-SIZE 100\r\n250 STARTTLS\r\n",
                    ehlo_tls=b"250-mx.scripted.test\r\n250 8BITMIME\r\n",
                    reply=lambda l, n: b"354 go\r\n" if l == "DATA" else b"250 2.0.0 ok\r\n")
    srv = relay["start"]()
    send(srv, ["RCPT TO:<big@scripted.test> NOTIFY=SUCCESS,FAILURE"],
         body=b"Subject: big\r\n\r\n" + b"x" * 300 + b"\r\n")
    wait_for(lambda: peer.bodies, what="delivery over TLS")
    assert peer.tls_used
    mail = [l for l in peer.lines if l.startswith("MAIL")]
    rcpt = [l for l in peer.lines if l.startswith("RCPT")]
    assert mail == ["MAIL FROM:<alice@example.test>"], peer.lines  # no SIZE=, no RET/ENVID
    assert rcpt == ["RCPT TO:<big@scripted.test>"], peer.lines  # no NOTIFY= for a peer without DSN


def test_broken_starttls_peer_gets_the_mail_in_cleartext(relay):
    peer = scripted(relay, ehlo=b"250-mx.scripted.test\r\n250-STARTTLS\r\n250 PIPELINING\r\n",
                    reply=lambda l, n: b"354 go\r\n" if l == "DATA" else b"250 ok\r\n")
    srv = relay["start"]()
    send(srv, ["tls-broken@scripted.test"])
    wait_for(lambda: peer.bodies, what="cleartext delivery after the failed handshake")
    assert peer.connections == 2 and peer.lines.count("STARTTLS") == 1


@pytest.mark.parametrize("greeting,ehlo,what", [
    (b"554 5.3.2 mx.scripted.test no SMTP service here\r\n", None, "the connection: 554 5.3.2"),
    (None, b"421 4.3.2 mx.scripted.test shutting down\r\n", "EHLO: 421 4.3.2"),
])
def test_peer_refusing_the_session_defers_with_its_reply(relay, greeting, ehlo, what):
    """A peer that refuses the session - 554 greeting (RFC 5321 3.1), or 4xx to EHLO - gets QUIT and
    no MAIL; the mail is deferred (it may be another exchanger's turn, or a better moment) with the
    peer's own reply in the log, then retried."""
    kw = {"greeting": greeting} if greeting else {"ehlo": ehlo}
    peer = scripted(relay, **kw)
    srv = relay["start"]()
    send(srv, ["r@scripted.test"])
    wait_for(lambda: peer.connections >= 2, what="a retry")
    assert not any(l.startswith("MAIL") for l in peer.lines)
    assert "QUIT" in peer.lines  # RFC 5321 3.1: the refusing server waits for it
    log = srv.log_text()
    assert f"mx.scripted.test[127.0.0.4] refused {what}" in log and "status=deferred" in log
    assert "status=bounced" not in log and not queue_empty(srv)


def test_starttls_refused_goes_on_in_cleartext(relay):
    """A peer that offers STARTTLS but answers it 454: without smtp_tls_verify the mail goes on
    in the same session, in cleartext."""
    peer = scripted(relay, ehlo=b"250-mx.scripted.test\r\n250-STARTTLS\r\n250 PIPELINING\r\n",
                    starttls=b"454 4.7.0 TLS not available due to temporary reason\r\n",
                    reply=lambda l, n: b"354 go\r\n" if l == "DATA" else b"250 ok\r\n")
    srv = relay["start"]()
    send(srv, ["tls-refused@scripted.test"])
    wait_for(lambda: peer.bodies, what="cleartext delivery")
    assert peer.connections == 1 and peer.lines.count("STARTTLS") == 1
    wait_for(lambda: queue_empty(srv), what="the queue file removed")


def test_pipelined_data_after_every_rcpt_refused_sends_no_text(relay):
    """Pipelining, every RCPT refused, and a peer that still answers the pipelined DATA with 354
    (RFC 2920 3.1): Postern ends the data at once with a lone dot - the text is never sent - and
    bounces the recipient with the RCPT reply."""
    def reply(line, n):
        if line.startswith("RCPT"):
            return b"550 5.1.1 <gone@scripted.test>: no such user\r\n"
        return b"354 go\r\n" if line == "DATA" else b"250 2.0.0 ok\r\n"
    peer = scripted(relay, reply=reply)
    srv = relay["start"]()
    send(srv, ["gone@scripted.test"], body=b"Subject: secret\r\n\r\nnot for this peer\r\n")
    _, rcpts = report_fields(dsn_for(srv))
    assert rcpts[0]["Status"] == "5.1.1" and "no such user" in rcpts[0]["Diagnostic-Code"]
    assert peer.bodies == [b".\r\n"]


def test_bounce_to_a_remote_sender_goes_out_with_null_sender(relay):
    mx1 = relay["peers"].start("127.0.0.2")
    srv = relay["start"](recipient_domain_check="no")
    send(srv, ["x@nxdomain.test"], sender="carl@two-mx.test")
    wait_for(lambda: mx1.messages, what="the DSN at the sender's MX")
    mail_from, rcpts, content = mx1.messages[0]
    assert mail_from == "<>" and rcpts == ["carl@two-mx.test"]  # aiosmtpd keeps the brackets of <>
    msg = email.message_from_bytes(content, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    assert b"Return-Path" not in content  # only a final delivery adds it


def test_relay_to_an_internationalized_domain_looks_up_its_a_label(relay):
    """RFC 6531 3.2 / RFC 5890: a U-label domain is looked up in DNS as its A-label; the peer gets
    the address as the client wrote it."""
    peer = scripted(relay, reply=refuses_nobody(), ehlo=b"250-mx.scripted.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
    srv = relay["start"]()
    send(srv, ["leser@B\u00dcCHER.test"], mail_params=" SMTPUTF8")
    wait_for(lambda: peer.bodies, what="delivery to the IDN domain's MX")
    assert "RCPT TO:<leser@B\u00dcCHER.test>" in peer.lines
    assert "event=route domain=" in srv.log_text() and "status=ok" in srv.log_text()


def test_u_label_domain_goes_as_a_label_to_a_peer_without_smtputf8(relay):
    """RFC 6531 3.2: with an ASCII local part, the A-label form is the same address: a peer without
    SMTPUTF8 gets it that way instead of a 5.6.7 bounce (and no 8-bit ORCPT)."""
    peer = scripted(relay, reply=refuses_nobody())  # PIPELINING and 8BITMIME only
    srv = relay["start"]()
    send(srv, ["RCPT TO:<leser@B\u00dcCHER.test> ORCPT=utf-8;leser@b\u00fccher.test"], mail_params=" SMTPUTF8")
    wait_for(lambda: peer.bodies, what="delivery without SMTPUTF8")
    [mail] = [l for l in peer.lines if l.startswith("MAIL")]
    assert mail.startswith("MAIL FROM:<alice@example.test>") and "SMTPUTF8" not in mail
    assert "RCPT TO:<leser@xn--bcher-kva.test>" in peer.lines, peer.lines


def test_bounce_to_a_utf8_sender_keeps_smtputf8_and_8bitmime(relay):
    """The DSN of an SMTPUTF8, 8-bit message goes to its UTF-8 sender with SMTPUTF8 and
    BODY=8BITMIME: its recipient needs the one (RFC 6531), its RET=FULL copy the other."""
    reply = refuses_nobody()
    peer = scripted(relay, reply=reply,
                    ehlo=b"250-mx.scripted.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
    srv = relay["start"]()
    send(srv, ["nobody@scripted.test"], sender="j\u00f6rg@scripted.test",
         mail_params=" SMTPUTF8 BODY=8BITMIME RET=FULL", body="Subject: \u00e9t\u00e9\r\n\r\nd\u00e9j\u00e0\r\n".encode())
    wait_for(lambda: peer.bodies, what="the DSN at the sender's MX")
    mails = [l for l in peer.lines if l.startswith("MAIL FROM:<>")]
    assert mails and " SMTPUTF8" in mails[0] and " BODY=8BITMIME" in mails[0], peer.lines
    assert "RCPT TO:<j\u00f6rg@scripted.test>" in peer.lines
    assert "d\u00e9j\u00e0".encode() in peer.bodies[0]  # RET=FULL: the original text, 8-bit
    report = email.message_from_bytes(unstuffed(peer.bodies[0]), policy=email.policy.default)
    returned = [p for p in report.walk() if p.get_content_type() == "message/rfc822"][0]
    # RFC 2045 6.4: the multipart and the message part holding 8-bit octets say so
    assert report["Content-Transfer-Encoding"] == "8bit" and returned["Content-Transfer-Encoding"] == "8bit"


def test_ipv6_destination(relay):
    sink = relay["peers"].start("::1")
    srv = relay["start"]()
    send(srv, ["six@v6only.test"])
    wait_for(lambda: sink.messages, what="delivery over IPv6")
    # the peer keeps the message before its 250, Postern logs the delivery after it
    wait_for(lambda: "v6only.test[::1]" in srv.log_text(), what="the delivery logged with the IPv6 address")


def test_bounce_from_an_address_literal_names_it_as_remote_mta(relay):
    """An address literal's host has no name: the report's Remote-MTA gives its address (it was
    "dns; " with nothing after it)."""
    scripted(relay, reply=lambda l, n: b"550 5.1.1 no such user\r\n" if l.startswith("RCPT") else
             b"354 go\r\n" if l == "DATA" else b"250 2.0.0 ok\r\n")
    srv = relay["start"]()
    send(srv, ["nobody@[127.0.0.4]"])
    _, rcpts = report_fields(dsn_for(srv))
    assert rcpts[0]["Remote-MTA"] == "dns; [127.0.0.4]" and rcpts[0]["Status"] == "5.1.1"


def rcpts_at_peer(peer):
    return [l for l in peer.lines if l.startswith("RCPT")]


@pytest.mark.parametrize("how", ["[name]", "name (MX)", "[address]:port"])
def test_relay_host_takes_all_outbound_mail(relay, how):
    """relay_host (a smarthost): mail for every other domain goes there - whatever the recipient
    domain's own DNS says, an address literal's included."""
    peer = scripted(relay, reply=lambda l, n: b"354 go\r\n" if l == "DATA" else b"250 2.0.0 ok\r\n")
    value = {"[name]": "[mx.scripted.test]", "name (MX)": "scripted.test",
             "[address]:port": f"[127.0.0.4]:{relay['port']}"}[how]
    extra = {"smtp_port": free_port()} if how.endswith(":port") else {}  # only relay_host's port is right
    srv = relay["start"](relay_host=value, **extra)
    send(srv, ["a@two-mx.test", "b@no-such-domain.test"])
    send(srv, ["c@[127.0.0.3]"])
    wait_for(lambda: len(rcpts_at_peer(peer)) == 3, what="every recipient at the relay host")
    assert sorted(rcpts_at_peer(peer)) == ["RCPT TO:<a@two-mx.test>", "RCPT TO:<b@no-such-domain.test>",
                                           "RCPT TO:<c@[127.0.0.3]>"]
    wait_for(lambda: queue_empty(srv), what="the queue empty")
    log = srv.log_text()
    assert f"event=route relay_host={value} status=ok" in log and "event=route domain=" not in log
    assert srv.maildir_files("alice@example.test") == []  # nothing bounced


def test_relay_host_as_an_ipv6_address(relay):
    """relay_host = [::1] (or [IPv6:::1]): an IPv6 relay host, no DNS at all."""
    sink = relay["peers"].start("::1")
    srv = relay["start"](relay_host="[::1]")
    send(srv, ["a@two-mx.test"])
    wait_for(lambda: sink.messages, what="the mail at the IPv6 relay host")
    assert sink.messages[0][1] == ["a@two-mx.test"]
    wait_for(lambda: "relay=[::1] status=sent" in srv.log_text(), what="the delivery logged")


def test_relay_host_is_one_destination_for_concurrency(relay):
    """destination_concurrency limits the connections to the relay host, not per recipient domain
    (a smarthost limits its clients' connections)."""
    def reply(line, n):
        if line == "<END>":
            time.sleep(0.5)
        return b"354 go\r\n" if line == "DATA" else b"250 2.0.0 ok\r\n"
    peer = scripted(relay, reply=reply)
    srv = relay["start"](relay_host="[mx.scripted.test]", destination_concurrency=1)
    for domain in ("one.test", "two.test", "three.test"):
        send(srv, [f"x@{domain}"])
    wait_for(lambda: len(peer.bodies) == 3, what="three messages at the relay host")
    assert peer.max_active == 1


def test_relay_host_that_cannot_be_resolved_defers_never_bounces(relay):
    srv = relay["start"](relay_host="[relay.nowhere.test]", retry_schedule="1h")
    qid = send(srv, ["a@two-mx.test"])
    wait_for(lambda: "status=deferred" in srv.log_text(), what="the deferral")
    assert 'detail="4.4.3 relay_host [relay.nowhere.test] cannot be used: relay.nowhere.test has no MX and no ' \
           'address record"' in srv.log_text()
    assert (srv.spool_dir / "queue" / qid).exists() and srv.maildir_files("alice@example.test") == []


def tls_context_for_scripted(tmp_path):
    import ssl
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=mx.scripted.test", "-keyout", str(tmp_path / "k.pem"), "-out", str(tmp_path / "c.pem")],
                   check=True, capture_output=True)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    return ctx


def relay_auth_file(tmp_path, text="relay-user@example.test:pa:ss word\n"):
    f = tmp_path / "relay-auth"
    f.write_text("# the relay host's account\n\n" + text)
    f.chmod(0o600)
    return f


def auth_replies(mechanism, password_ok=True):
    """A relay host's replies: AUTH (PLAIN, or LOGIN's two 334 prompts) then the transaction."""
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    plain = "AUTH PLAIN " + b64("\0relay-user@example.test\0pa:ss word")

    def reply(line, n):
        if line == plain or line == b64("pa:ss word"):
            return b"235 2.7.0 ok\r\n" if password_ok else b"535 5.7.8 bad credentials\r\n"
        if line == "AUTH LOGIN":
            return b"334 VXNlcm5hbWU6\r\n"
        if line == b64("relay-user@example.test"):
            return b"334 UGFzc3dvcmQ6\r\n"
        if line.startswith("AUTH"):
            return b"504 5.5.4 unexpected " + line.encode() + b"\r\n"
        return b"354 go\r\n" if line == "DATA" else b"250 2.0.0 ok\r\n"
    return reply


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_relay_host_auth_logs_in_over_tls(relay, tmp_path, mechanism):
    """relay_host_auth: after STARTTLS, AUTH PLAIN (or LOGIN when PLAIN is not offered) with the
    file's user and password (which may hold ':' and spaces); then the mail."""
    peer = scripted(relay, tls=tls_context_for_scripted(tmp_path), reply=auth_replies(mechanism),
                    ehlo=b"250-mx.scripted.test\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n",
                    ehlo_tls=b"250-mx.scripted.test\r\n250-PIPELINING\r\n250 AUTH " +
                    (b"CRAM-MD5 PLAIN LOGIN" if mechanism == "PLAIN" else b"LOGIN") + b"\r\n")
    srv = relay["start"](relay_host="[mx.scripted.test]", relay_host_auth=relay_auth_file(tmp_path))
    send(srv, ["x@elsewhere.test"])
    wait_for(lambda: peer.bodies, what="the mail at the relay host")
    assert peer.tls_used
    sent = [l for l in peer.lines if l.startswith(("STARTTLS", "AUTH", "MAIL"))]
    assert sent[0] == "STARTTLS" and sent[2].startswith("MAIL FROM:")
    assert sent[1].startswith("AUTH PLAIN ") if mechanism == "PLAIN" else sent[1] == "AUTH LOGIN"
    wait_for(lambda: "event=smtp_client_auth host=mx.scripted.test[127.0.0.4] user=relay-user@example.test" in
             srv.log_text(), what="the login logged")
    assert "pa:ss" not in srv.log_text()


def test_relay_host_with_implicit_tls_and_auth(relay, tmp_path):
    """relay_host_implicit_tls: TLS from the first byte (a submissions port, RFC 8314), then EHLO,
    AUTH and the mail; no STARTTLS."""
    peer = scripted(relay, implicit_tls=tls_context_for_scripted(tmp_path), reply=auth_replies("PLAIN"),
                    ehlo=b"250-mx.scripted.test\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n")
    srv = relay["start"](relay_host=f"[mx.scripted.test]:{relay['port']}", relay_host_implicit_tls="yes",
                         relay_host_auth=relay_auth_file(tmp_path))
    send(srv, ["x@elsewhere.test"])
    wait_for(lambda: peer.bodies, what="the mail at the relay host")
    assert peer.tls_used and not any(l.startswith("STARTTLS") for l in peer.lines)
    assert [l.split(" ")[0] for l in peer.lines[:3]] == ["EHLO", "AUTH", "MAIL"]
    assert "event=smtp_client_tls host=mx.scripted.test[127.0.0.4] tls=TLSv1.3" in srv.log_text()


def test_relay_host_with_implicit_tls_never_falls_back_to_cleartext(relay, tmp_path):
    peer = scripted(relay, reply=auth_replies("PLAIN"))  # speaks plain SMTP: the handshake fails
    srv = relay["start"](relay_host="[mx.scripted.test]", relay_host_implicit_tls="yes", retry_schedule="1h")
    send(srv, ["x@elsewhere.test"])
    wait_for(lambda: "status=deferred" in srv.log_text(), what="the deferral")
    assert peer.connections == 1  # no second, cleartext connection
    assert not any(l.startswith(("EHLO", "HELO", "MAIL")) for l in peer.lines)  # only the TLS ClientHello


def test_relay_host_auth_new_password_applies_at_reload(relay, tmp_path):
    """A changed password file is read again on SIGHUP (as the server's user) and used from the
    next login on: no restart."""
    peer = scripted(relay, tls=tls_context_for_scripted(tmp_path),
                    reply=lambda l, n: b"235 2.7.0 ok\r\n" if l.startswith("AUTH") else
                    b"354 go\r\n" if l == "DATA" else b"250 2.0.0 ok\r\n",
                    ehlo=b"250-mx.scripted.test\r\n250 STARTTLS\r\n",
                    ehlo_tls=b"250-mx.scripted.test\r\n250 AUTH PLAIN\r\n")
    auth = relay_auth_file(tmp_path, "relay-user@example.test:first\n")
    auth.chmod(0o644)  # readable by the server's user once it has dropped root
    srv = relay["start"](relay_host="[mx.scripted.test]", relay_host_auth=auth)
    send(srv, ["x@elsewhere.test"])
    wait_for(lambda: len(peer.bodies) == 1, what="the first message")
    auth.write_text("relay-user@example.test:second\n")
    sighup_and_wait(srv, "reloaded")
    assert "event=reload_needs_restart" not in srv.log_text()
    send(srv, ["y@elsewhere.test"])
    wait_for(lambda: len(peer.bodies) == 2, what="the second message")
    logins = [base64.b64decode(l.split()[2]).split(b"\0")[2] for l in peer.lines if l.startswith("AUTH PLAIN")]
    assert logins == [b"first", b"second"]


def test_relay_host_auth_is_never_sent_in_clear_and_a_refusal_defers(relay, tmp_path):
    no_tls = scripted(relay, reply=auth_replies("PLAIN"), ehlo=b"250-mx.scripted.test\r\n250 AUTH PLAIN\r\n")
    srv = relay["start"](relay_host="[mx.scripted.test]", relay_host_auth=relay_auth_file(tmp_path),
                         retry_schedule="1h")
    qid = send(srv, ["x@elsewhere.test"])
    wait_for(lambda: "status=deferred" in srv.log_text(), what="the deferral")
    assert not any(l.startswith("AUTH") for l in no_tls.lines) and not no_tls.bodies
    assert "4.7.0 mx.scripted.test[127.0.0.4]: no TLS, so the relay_host_auth password is not sent" in srv.log_text()
    assert (srv.spool_dir / "queue" / qid).exists()


def test_relay_host_auth_refused_defers(relay, tmp_path):
    peer = scripted(relay, tls=tls_context_for_scripted(tmp_path), reply=auth_replies("PLAIN", password_ok=False),
                    ehlo=b"250-mx.scripted.test\r\n250 STARTTLS\r\n",
                    ehlo_tls=b"250-mx.scripted.test\r\n250 AUTH PLAIN\r\n")
    srv = relay["start"](relay_host="[mx.scripted.test]", relay_host_auth=relay_auth_file(tmp_path),
                         retry_schedule="1h")
    qid = send(srv, ["x@elsewhere.test"])
    wait_for(lambda: "status=deferred" in srv.log_text(), what="the deferral")
    log = srv.log_text()
    assert "event=smtp_client_auth_failed host=mx.scripted.test[127.0.0.4] user=relay-user@example.test reply=535" in log
    assert "refused authentication (relay_host_auth): 535 5.7.8 bad credentials" in log
    assert not peer.bodies and (srv.spool_dir / "queue" / qid).exists()
    assert srv.maildir_files("alice@example.test") == []  # deferred, not bounced


@pytest.mark.parametrize("conf, error", [
    ("relay_host_auth = {auth}\n", "r.conf:1: relay_host_auth: needs relay_host"),
    ("relay_host = [mx.example.test]\nsmtp_tls = no\nrelay_host_auth = {auth}\n",
     "r.conf:3: relay_host_auth: needs smtp_tls = yes (the password goes over TLS only)"),
    ("relay_host = [mx.example.test]\nrelay_host_auth = {missing}\n", "r.conf:2: relay_host_auth: cannot read"),
    ("relay_host_implicit_tls = yes\n", "r.conf:1: relay_host_implicit_tls: needs relay_host and smtp_tls = yes"),
    ("relay_host = [mx.example.test]\nrelay_host_auth = {bad}\n", "relay-bad:3: relay_host_auth: expected user:password"),
    ("relay_host = [mx.example.test]\nrelay_host_auth = {two}\n",
     "relay-two:4: relay_host_auth: more than one user:password line"),
    ("relay_host = [mx.example.test]\nrelay_host_auth = {empty}\n",
     "relay-empty:2: relay_host_auth: no user:password line"),
])
def test_relay_host_auth_config_errors(tmp_path, conf, error):
    files = {}
    for name, text in (("bad", "just-a-user\n"), ("two", "a:b\nc:d\n"), ("empty", "")):
        files[name] = tmp_path / f"relay-{name}"
        files[name].write_text("# account\n\n" + text)
    cfile = tmp_path / "r.conf"
    cfile.write_text(conf.format(auth=relay_auth_file(tmp_path), missing=tmp_path / "nope", **files))
    out = subprocess.run([str(BIN), "check-config", "-c", str(cfile)], capture_output=True, text=True, timeout=10)
    assert out.returncode == 1 and error in out.stderr, out.stderr


def test_relay_host_auth_file_readable_by_others_is_warned_about(tmp_path):
    auth = relay_auth_file(tmp_path)
    auth.chmod(0o644)
    cfile = tmp_path / "r.conf"
    cfile.write_text(f"relay_host = [mx.example.test]\nrelay_host_auth = {auth}\n")
    out = subprocess.run([str(BIN), "check-config", "-c", str(cfile)], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and f"key=relay_host_auth detail=\"{auth} can be read by every user" in out.stderr
    assert "key=smtp_tls_verify detail=\"no: the relay_host_auth password goes to any server that answers for " \
        "[mx.example.test] with any certificate" in out.stderr
    auth.chmod(0o640)  # the group (the server's user, for reloads) may read it: no warning
    cfile.write_text(f"relay_host = [mx.example.test]\nrelay_host_auth = {auth}\nsmtp_tls_verify = yes\n")
    out = subprocess.run([str(BIN), "check-config", "-c", str(cfile)], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and "key=relay_host_auth" not in out.stderr and "key=smtp_tls_verify" not in out.stderr


@pytest.mark.parametrize("value", ["[mx.example.test", "mx.example.test:99999", "[mx.example.test]x", "a b",
                                   "mx.example.test:", "[]"])
def test_relay_host_syntax_errors(make_server, tmp_path, value):
    conf = tmp_path / "r.conf"
    conf.write_text(f"relay_host = {value}\n")
    out = subprocess.run([str(BIN), "check-config", "-c", str(conf)], capture_output=True, text=True, timeout=10)
    assert out.returncode == 1 and f"r.conf:1: relay_host: expected [name], [address] or name, with an optional " \
        f":port, e.g. [smtp.example.net]:587: '{value}'" in out.stderr, out.stderr


def test_address_literal_destinations(relay):
    """An address literal has no MX: the mail goes straight to that address (RFC 5321 5.1), over
    IPv4 and IPv6; a General-address-literal names nothing reachable: bounced 5.1.2."""
    four, six = relay["peers"].start("127.0.0.3"), relay["peers"].start("::1")
    srv = relay["start"]()
    send(srv, ["four@[127.0.0.3]", "six@[IPv6:::1]"])
    wait_for(lambda: four.messages and six.messages, what="delivery to both address literals")
    assert four.messages[0][1] == ["four@[127.0.0.3]"] and six.messages[0][1] == ["six@[IPv6:::1]"]
    wait_for(lambda: "rcpt=<four@[127.0.0.3]> relay=[127.0.0.3] status=sent" in srv.log_text(), what="the log")
    assert "rcpt=<six@[IPv6:::1]> relay=[::1] status=sent" in srv.log_text()
    send(srv, ["x@[tag:somewhere]"])
    _, rcpts = report_fields(dsn_for(srv))
    assert rcpts[0]["Status"] == "5.1.2" and "[tag:somewhere] is an address literal" in rcpts[0]["Diagnostic-Code"]


def test_mail_loop_refused_by_hop_count(relay):
    srv = relay["start"](max_hops=20)
    for hops, code in ((19, 250), (20, 554)):
        c = srv.connect()
        c.expect("EHLO client.example", 250)
        c.expect("MAIL FROM:<alice@example.test>", 250)
        c.expect("RCPT TO:<bob@example.test>", 250)
        c.expect("DATA", 354)
        trace = "".join(f"Received: from hop{i}.example by hop{i + 1}.example; Mon, 23 Nov 2026 08:00:00 +0000\r\n"
                        for i in range(hops))
        lines = c.expect(trace + "Subject: loop\r\n\r\nround and round\r\n.", code)
        if code == 554:
            assert lines[0].startswith("5.4.6")
    assert len(srv.maildir_files("bob@example.test")) == 1


def test_mx_that_is_this_server_bounces_as_a_loop(relay):
    """The peer greets with our own name (an MX pointing back here): 5.4.6 at once, no MAIL sent."""
    peer = scripted(relay, ehlo=b"250-MX.example.test Hello\r\n250 PIPELINING\r\n")
    srv = relay["start"]()
    send(srv, ["loop@scripted.test"])
    _, rcpts = report_fields(dsn_for(srv))
    assert rcpts[0]["Status"] == "5.4.6" and "loops back to this server" in rcpts[0]["Diagnostic-Code"]
    assert not any(l.startswith("MAIL") for l in peer.lines)
    assert "event=smtp_client_loop" in srv.log_text()


def self_signed(tmp_path, name, cn, san=None):
    """A self-signed certificate (its own CA) for cn, with subjectAltName san (default DNS:cn)."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={cn}",
                    "-addext", f"subjectAltName={san or 'DNS:' + cn}", "-keyout", str(tmp_path / f"{name}.key"),
                    "-out", str(tmp_path / f"{name}.pem")], check=True, capture_output=True)
    (tmp_path / f"{name}.pem").chmod(0o644)
    os.chmod(tmp_path, 0o755)
    return tmp_path / f"{name}.pem", tmp_path / f"{name}.key"


def tls_peer(relay, host, cert, key):
    """An aiosmtpd peer on host that requires STARTTLS with this certificate."""
    import ssl
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    sink = Sink()
    c = Controller(sink, hostname=host, port=relay["port"], tls_context=ctx, require_starttls=True)
    c.start()
    relay["peers"].controllers[host] = c
    return sink


def test_smtp_tls_verify_requires_a_valid_certificate(relay, tmp_path):
    good, good_key = self_signed(tmp_path, "good", "mx1.two-mx.test")
    other, _ = self_signed(tmp_path, "other", "mx1.two-mx.test")  # same name, but not the trusted CA
    sink = tls_peer(relay, "127.0.0.2", good, good_key)
    srv = relay["start"](smtp_tls_verify="yes", smtp_tls_ca_file=other)  # untrusted: deferred, never cleartext
    qid = send(srv, ["v@two-mx.test"])
    wait_for(lambda: "4.7.5 the TLS certificate of mx1.two-mx.test[127.0.0.2] is not valid" in srv.log_text(),
             what="a verification failure")
    wait_for(lambda: (srv.spool_dir / "state" / qid).exists(), what="the deferral recorded")
    assert sink.messages == [] and (srv.spool_dir / "queue" / qid).exists()
    srv2 = relay["start"](smtp_tls_verify="yes", smtp_tls_ca_file=good)
    send(srv2, ["v@two-mx.test"])
    wait_for(lambda: sink.messages, what="delivery over verified TLS")
    assert "verified=yes" in srv2.log_text()


def test_smtp_tls_verify_of_an_address_literal_checks_its_address(relay, tmp_path):
    """Mail to an address literal has no host name to check: the certificate must name the address
    (an IP subjectAltName). One that names only a host is not valid for it."""
    by_name, by_name_key = self_signed(tmp_path, "name", "mx.literal.test")
    srv = relay["start"](smtp_tls_verify="yes", smtp_tls_ca_file=by_name)
    sink = tls_peer(relay, "127.0.0.2", by_name, by_name_key)
    send(srv, ["v@[127.0.0.2]"])
    wait_for(lambda: "4.7.5 the TLS certificate of [127.0.0.2] is not valid" in srv.log_text(),
             what="a verification failure")
    assert sink.messages == []
    relay["peers"].controllers.pop("127.0.0.2").stop()
    by_ip, by_ip_key = self_signed(tmp_path, "ip", "mx.literal.test", "IP:127.0.0.3")
    sink = tls_peer(relay, "127.0.0.3", by_ip, by_ip_key)
    srv2 = relay["start"](smtp_tls_verify="yes", smtp_tls_ca_file=by_ip)
    send(srv2, ["v@[127.0.0.3]"])
    wait_for(lambda: sink.messages, what="delivery over TLS verified by address")
    assert "verified=yes" in srv2.log_text()


def test_route_is_looked_up_again_once_its_ttl_is_over(relay):
    """A destination that never ran out of work kept its first route for ever: mail went on to an
    MX the domain had left (until a restart). The route now lasts its records' TTL."""
    dns = MovingDNS({("moving.test", "MX"): [(10, "mx.moving.test")], ("mx.moving.test", "A"): ["127.0.0.4"]})

    def reply(line, n):
        if line == "<END>" and n == 0:
            time.sleep(5)  # the first delivery keeps the destination busy meanwhile
        return b"354 go\r\n" if line == "DATA" else b"250 2.0.0 ok\r\n"
    old_mx = scripted(relay, reply=reply)
    new_mx = relay["peers"].start("127.0.0.2")
    try:
        srv = relay["start"](dns_resolver=f"127.0.0.1@{dns.port}")
        send(srv, ["one@moving.test"])
        wait_for(lambda: old_mx.bodies, what="the first message at the old MX")
        dns.records[("mx.moving.test", "A")] = ["127.0.0.2"]
        time.sleep(2)  # the 1 s TTL is over
        send(srv, ["two@moving.test"])
        wait_for(lambda: new_mx.messages, what="the second message at the new MX")
        assert new_mx.messages[0][1] == ["two@moving.test"]
        assert len(old_mx.bodies) == 1
    finally:
        dns.close()
