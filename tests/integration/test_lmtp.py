"""Delivery by LMTP (RFC 2033) through the transport table: to a scripted LMTP peer (every reply
chosen) and to a real Dovecot, whose IMAP server then shows the message."""
import contextlib
import imaplib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import free_port, wait_for
from test_relay import queue_empty, relay, scripted, send  # noqa: F401 (relay: a fixture)

LHLO = b"250-lmtp.scripted.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"


def lmtp_reply(end):
    def reply(line, n):
        if line.startswith("LHLO"):
            return LHLO
        if line == "<END>":
            return end
        return b"354 go\r\n" if line == "DATA" else b"250 2.1.0 ok\r\n"
    return reply


def transport(tmp_path, text):
    f = tmp_path / "transport"
    f.write_text(text)
    return f


def test_lmtp_gives_each_recipient_its_own_result(relay, tmp_path):
    """A local domain routed to an LMTP server: RCPT still checks the recipients table; the message
    is queued (no Maildir copy) and sent with LHLO; after the data, one reply per recipient - the
    first delivered, the second deferred (452: that mailbox's, not sent again at once as a 452 to
    RCPT would be) and the third bounced (550)."""
    peer = scripted(relay, ehlo=b"", reply=lmtp_reply(
        b"250 2.0.0 <alice@example.test> saved\r\n452 4.2.2 <bob@example.test> over quota\r\n"
        b"550 5.1.1 <postmaster@example.test> no such user\r\n"))
    srv = relay["start"](hostname="lmtp.scripted.test", retry_schedule="1h", transport=transport(
        tmp_path, f"example.test lmtp:[127.0.0.4]:{relay['port']}\n"))
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<someone@elsewhere.example>", 250)
    c.expect("RCPT TO:<nobody@example.test>", 550, "5.1.1")
    c.expect("QUIT", 221)
    send(srv, ["alice@example.test", "bob@example.test", "postmaster@example.test"])
    wait_for(lambda: "status=bounced" in srv.log_text(), what="the LMTP results")
    log = srv.log_text()
    assert [l.split()[0] for l in peer.lines[:6]] == ["LHLO", "MAIL", "RCPT", "RCPT", "RCPT", "DATA"]
    assert "rcpt=<alice@example.test> relay=[127.0.0.4] status=sent" in log
    assert 'rcpt=<bob@example.test> relay=[127.0.0.4] status=deferred detail="452 4.2.2' in log
    assert 'rcpt=<postmaster@example.test> relay=[127.0.0.4] status=bounced detail="550 5.1.1' in log
    # one transaction for the three (the bounce to alice may follow on the same peer: MAIL FROM:<>)
    assert [l for l in peer.lines if l.startswith("MAIL FROM:<a")] == ["MAIL FROM:<alice@example.test>"], peer.lines
    assert "event=delivery_continued" not in log
    assert "event=smtp_client_loop" not in log  # the LMTP server may greet with our own name
    assert not srv.maildir_files("bob@example.test") and not (srv.mail_dir / "example.test").exists()
    assert not queue_empty(srv)  # bob waits for his retry


def test_lmtp_transport_for_a_local_domain_passes_check_config_and_smtp_does_not(tmp_path):
    from conftest import BIN
    t = transport(tmp_path, "example.test lmtp:unix:/run/dovecot/lmtp\nother.test lmtp:[::1]\n"
                            "third.test lmtp:unix:relative/path\n")
    conf = tmp_path / "t.conf"
    conf.write_text(f"local_domains = example.test, local.test\ntransport = {t}\n")
    r = subprocess.run([str(BIN), "check-config", "-c", str(conf)], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert r.stderr.count(f"{t}:") == 1 and f"{t}:3: transport: next hop" in r.stderr, r.stderr
    t.write_text("local.test [192.0.2.1]\n")
    r = subprocess.run([str(BIN), "check-config", "-c", str(conf)], capture_output=True, text=True, timeout=10)
    assert f"{t}:1: transport: domain is in local_domains" in r.stderr, r.stderr


DOVECOT_CONF = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
instance_name = postern-test-{port}
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = {mail_location}
first_valid_uid = 1
{users_line}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu {d}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%Lu {d}/users
  default_fields = uid={uid} gid={gid} home={d}/home/%d/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  unix_listener {d}/lmtp {{
    mode = 0666
  }}
}}
service anvil {{
  chroot =
}}
{extra}
"""


@contextlib.contextmanager
def dovecot_running(tmp_path, mail_location=None, owner=None, extra=""):
    """A private Dovecot (LMTP on a Unix socket, IMAP on a free loopback port), stopped by PID on
    leaving; its mail in its own directory, or at mail_location as the user owner (a pwd entry)."""
    d = tmp_path / "dovecot"
    for sub in ("run", "state", "mail", "home"):
        (d / sub).mkdir(parents=True)
    if os.geteuid() == 0:  # mail is stored as nobody; Dovecot's own users come with its package
        uid, gid = (owner or pwd.getpwnam("nobody")).pw_uid, (owner or pwd.getpwnam("nobody")).pw_gid
        users_line = ""
        for p in (d, d / "mail", d / "home"):
            os.chmod(p, 0o777)
        p = tmp_path
        while str(p) not in ("/", "/tmp"):
            os.chmod(p, os.stat(p).st_mode | 0o711)
            p = p.parent
    else:
        me = pwd.getpwuid(os.geteuid()).pw_name
        uid, gid = os.geteuid(), os.getegid()
        users_line = f"default_internal_user = {me}\ndefault_login_user = {me}\n"
    (d / "users").write_text("alice@example.test:{PLAIN}alice-secret::::::\nbob@example.test:{PLAIN}bob-secret::::::\n")
    imap = free_port()
    conf = d / "dovecot.conf"
    conf.write_text(DOVECOT_CONF.format(d=d, port=imap, users_line=users_line, uid=uid, gid=gid, imap=imap,
                                        mail_location=mail_location or f"maildir:{d}/mail/%d/%n", extra=extra))
    proc = subprocess.Popen([shutil.which("dovecot") or "/usr/sbin/dovecot", "-F", "-c", str(conf)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: (d / "lmtp").exists() and port_open(imap) or proc.poll() is not None,
                 what="dovecot listening")
        assert proc.poll() is None, proc.stdout.read().decode() + (d / "dovecot.log").read_text()
        yield {"dir": d, "socket": d / "lmtp", "imap": imap}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def dovecot(tmp_path):
    with dovecot_running(tmp_path) as d:
        yield d


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def imap_messages(port, user, password):
    """The messages in user's INBOX, fetched over IMAP."""
    with imaplib.IMAP4("127.0.0.1", port) as m:
        m.login(user, password)
        m.select("INBOX", readonly=True)
        _, data = m.search(None, "ALL")
        out = []
        for num in data[0].split():
            _, msg = m.fetch(num, "(RFC822)")
            out.append(msg[0][1])
        m.logout()
        return out


def test_lmtp_to_dovecot_the_mail_is_read_over_imap(relay, tmp_path, dovecot):
    """A real LMTP server: local domain example.test is delivered to Dovecot over its Unix socket;
    alice reads the message with IMAP; an address Dovecot does not know bounces with its reply."""
    t = transport(tmp_path, f"example.test lmtp:unix:{dovecot['socket']}\n")
    srv = relay["start"](transport=t, retry_schedule="1h")
    send(srv, ["RCPT TO:<alice@example.test> NOTIFY=SUCCESS", "postmaster@example.test"],
         sender="someone@catchall.test", body=b"Subject: through LMTP\r\n\r\nhello Dovecot\r\n")
    msgs = wait_for(lambda: imap_messages(dovecot["imap"], "alice@example.test", "alice-secret"),
                    what="the message in alice's INBOX")
    assert len(msgs) == 1 and b"Subject: through LMTP" in msgs[0] and b"hello Dovecot" in msgs[0]
    assert b"Return-Path: <someone@catchall.test>" in msgs[0]
    wait_for(lambda: "rcpt=<postmaster@example.test>" in srv.log_text(), what="postmaster's result")
    log = srv.log_text()
    assert "rcpt=<alice@example.test> relay=localhost[unix] status=sent" in log, log[-3000:]
    assert f"event=route transport=lmtp:unix:{dovecot['socket']} status=ok" in log
    assert "rcpt=<postmaster@example.test>" in log and "status=bounced" in log
    report = wait_for(lambda: srv.maildir_files("someone@catchall.test"), what="the report to the sender")
    text = report[0].read_bytes()
    assert b"User doesn't exist: postmaster@example.test" in text
    # alice asked NOTIFY=SUCCESS: an LMTP server's 250 is a final delivery, not a relay
    assert b"Final-Recipient: rfc822; alice@example.test\nAction: delivered\nStatus: 2.0.0" in text, text
    assert str(dovecot["socket"]).encode() not in text  # the socket's path stays out of the report
    assert not (srv.mail_dir / "example.test").exists()  # nothing written to a Maildir of ours


def test_route_names_the_lmtp_next_hop(tmp_path):
    from conftest import BIN
    (tmp_path / "rcpts").write_text("alice@example.test\n")
    t = transport(tmp_path, "example.test lmtp:unix:/run/dovecot/lmtp\n")
    conf = tmp_path / "t.conf"
    conf.write_text(f"local_domains = example.test\nrecipients = {tmp_path}/rcpts\ntransport = {t}\n")
    r = subprocess.run([str(BIN), "-c", str(conf), "route", "alice@example.test", "bob@example.test"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1  # bob is refused
    assert "alice@example.test\n  local: queued for the domain's LMTP server (from any client)\n    sent to the " \
        "transport entry's next hop lmtp:unix:/run/dovecot/lmtp (LMTP over a Unix-domain socket)\n" in r.stdout, r.stdout
    assert "bob@example.test\n  refused at RCPT: 550 5.1.1" in r.stdout


def test_lmtp_server_gone_after_the_first_reply_keeps_that_delivery(relay, tmp_path):
    """The LMTP server answers the data for the first recipient, then the connection drops: that
    recipient is delivered (never sent again), the second deferred (451) and retried alone."""
    srv_sock = socket.socket()
    srv_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv_sock.bind(("127.0.0.4", 0))
    srv_sock.listen(4)
    seen = []

    def serve():
        try:
            serve_two()
        except Exception as e:  # noqa: BLE001 (shown by the assertion below)
            seen.append(("error", repr(e)))

    def serve_two():
        for n in range(2):
            conn, _ = srv_sock.accept()
            f = conn.makefile("rb")
            conn.sendall(b"220 lmtp.test LMTP\r\n")
            while True:
                line = f.readline().decode().rstrip("\r\n")
                if not line:
                    break
                seen.append((n, line))
                if line.startswith("LHLO"):
                    conn.sendall(b"250-lmtp.test\r\n250 PIPELINING\r\n")
                elif line == "DATA":
                    conn.sendall(b"354 go\r\n")
                    while f.readline() not in (b".\r\n", b""):
                        pass
                    conn.sendall(b"250 2.0.0 first saved\r\n")
                    if n == 0:
                        conn.shutdown(socket.SHUT_RDWR)  # gone before the second recipient's reply
                        break
                elif line == "QUIT":
                    conn.sendall(b"221 bye\r\n")
                    break
                else:
                    conn.sendall(b"250 2.1.0 ok\r\n")
            f.close()
            conn.close()
    threading.Thread(target=serve, daemon=True).start()
    port = srv_sock.getsockname()[1]
    srv = relay["start"](retry_schedule="1s", transport=transport(tmp_path, f"example.test lmtp:[127.0.0.4]:{port}\n"))
    send(srv, ["alice@example.test", "bob@example.test"])
    wait_for(lambda: queue_empty(srv), what="both recipients settled")
    log = srv.log_text()
    assert 'rcpt=<alice@example.test> relay=[127.0.0.4] status=sent detail="250 2.0.0 first saved"' in log
    assert "rcpt=<bob@example.test> relay=[127.0.0.4] status=deferred" in log
    assert 'rcpt=<bob@example.test> relay=[127.0.0.4] status=sent detail="250 2.0.0 first saved"' in log
    assert [line for n, line in seen if line.startswith("RCPT")] == [
        "RCPT TO:<alice@example.test>", "RCPT TO:<bob@example.test>", "RCPT TO:<bob@example.test>"]
    srv_sock.close()
