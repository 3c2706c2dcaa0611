"""TLS and authenticated submission: STARTTLS (RFC 3207), implicit TLS (RFC 8314), AUTH PLAIN/LOGIN
(RFC 4954/4616), every reply code, the pre-handshake injection attack (CVE-2011-0411 class),
failure limits, version floor, and real clients (smtplib, openssl s_client, swaks)."""
import base64
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import BIN, REPO, Client, free_port, open_path_for_server, sighup_and_wait, wait_for

PASSWORD = "Corr3ct-Horse-Battery"  # distinctive, so the log can be searched for it


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A throw-away CA, a server certificate for mx.example.test / 127.0.0.1, and a users table."""
    d = tmp_path_factory.mktemp("pki")
    open_path_for_server(d)

    def sh(*args):
        subprocess.run(args, cwd=d, check=True, capture_output=True)

    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Postern Test CA",
       "-keyout", "ca.key", "-out", "ca.pem")
    sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=mx.example.test", "-keyout", "key.pem",
       "-out", "server.csr")
    (d / "ext.cnf").write_text("subjectAltName=DNS:mx.example.test,IP:127.0.0.1\n")
    sh("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
       "-days", "2", "-extfile", "ext.cnf", "-out", "cert.pem")
    out = subprocess.run([str(BIN), "passwd", "alice@example.test"], input=PASSWORD + "\n", capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out.startswith("alice@example.test:$y$") or out.startswith("alice@example.test:$6$")
    (d / "users").write_text(out + ":alias@example.test,sales@example.test\n")
    for f in d.iterdir():
        f.chmod(0o644)
    return d


@pytest.fixture
def tls_server(make_server, pki):
    def start(**overrides):
        sub, smtps = free_port(), free_port()
        conf = dict(tls_cert=pki / "cert.pem", tls_key=pki / "key.pem", users=pki / "users",
                    submission_listen=f"127.0.0.1:{sub}", smtps_listen=f"127.0.0.1:{smtps}",
                    auth_failure_delay=50)
        conf.update(overrides)
        srv = make_server(**conf)
        srv.sub_port, srv.smtps_port = sub, smtps
        return srv
    return start


def client_ctx(pki):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    return ctx


def plain_b64(user, password, authzid=""):
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()


def starttls(c, pki, host="127.0.0.1"):
    """Upgrades a raw Client after its STARTTLS got 220."""
    assert c.buf == b""
    c.sock = client_ctx(pki).wrap_socket(c.sock, server_hostname=host)


def submission(srv, pki, auth=True):
    c = Client(srv.sub_port)
    assert c.reply()[0] == 220
    c.expect("EHLO client.example", 250)
    c.expect("STARTTLS", 220, "2.0.0")
    starttls(c, pki)
    c.expect("EHLO client.example", 250)
    if auth:
        c.expect("AUTH PLAIN " + plain_b64("alice@example.test", PASSWORD), 235, "2.7.0")
    return c


def test_smtplib_starttls_login_sendmail_end_to_end(tls_server, pki):
    srv = tls_server(relay_networks="")
    with smtplib.SMTP("127.0.0.1", srv.sub_port, timeout=20) as s:
        s.ehlo("client.example")
        assert s.has_extn("starttls") and not s.has_extn("auth")  # no AUTH before TLS
        s.starttls(context=client_ctx(pki))  # verifies the chain against the test CA
        s.ehlo("client.example")
        assert "PLAIN" in s.esmtp_features["auth"] and not s.has_extn("starttls")
        s.login("alice@example.test", PASSWORD)
        refused = s.sendmail("alice@example.test", ["bob@example.test", "friend@servfail.test"],
                             b"Subject: submitted\r\n\r\nhello\r\n")
        assert refused == {}
    [f] = srv.maildir_files("bob@example.test")
    text = f.read_text()
    assert "with ESMTPSA id" in text and "(using TLSv1.3 with cipher TLS_" in text
    queued = list((srv.spool_dir / "queue").iterdir())  # the remote recipient waits for the relay
    assert len(queued) == 1 and "rcpt 0 - friend@servfail.test" in queued[0].read_text()
    wait_for(lambda: "ended=quit" in srv.log_text(), what="the disconnect line")
    log = srv.log_text()
    assert "event=auth_ok" in log and "user=alice@example.test" in log
    assert re.search(r"event=accepted session=\w+ qid=\w+ client=127\.0\.0\.1 user=alice@example\.test "
                     r"sender=<alice@example\.test> ", log), log
    assert re.search(r"event=disconnect .* ended=quit commands=\d+ messages=1 rcpts=2/2 errors=0 "
                     r"user=alice@example.test\n", log), log


def test_implicit_tls_smtps(tls_server, pki):
    srv = tls_server()
    raw = socket.create_connection(("127.0.0.1", srv.smtps_port), timeout=10)
    tls = client_ctx(pki).wrap_socket(raw, server_hostname="mx.example.test")
    assert tls.version() in ("TLSv1.2", "TLSv1.3")
    f = tls.makefile("rb")
    assert f.readline().startswith(b"220 mx.example.test ESMTP Postern")
    tls.sendall(b"EHLO c.example\r\n")
    lines = []
    while True:
        line = f.readline()
        lines.append(line)
        if line[3:4] == b" ":
            break
    assert b"250-AUTH PLAIN LOGIN\r\n" in lines or b"250 AUTH PLAIN LOGIN\r\n" in lines
    assert not any(b"STARTTLS" in l for l in lines)
    tls.sendall(b"MAIL FROM:<alice@example.test>\r\n")
    assert f.readline().startswith(b"530 5.7.0 Authentication required")
    tls.sendall(b"AUTH PLAIN " + plain_b64("alice@example.test", PASSWORD).encode() + b"\r\n")
    assert f.readline().startswith(b"235 2.7.0")
    tls.sendall(b"MAIL FROM:<sales@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    assert [f.readline()[:3] for _ in range(3)] == [b"250", b"250", b"354"]
    tls.sendall(b"Subject: smtps\r\n\r\nx\r\n.\r\nQUIT\r\n")
    assert f.readline().startswith(b"250 2.0.0 Ok: queued as")
    assert f.readline().startswith(b"221")
    tls.close()
    assert "with ESMTPSA" in srv.maildir_files("bob@example.test")[0].read_text()


def test_openssl_s_client_starttls(tls_server, pki):
    srv = tls_server()
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{srv.port}", "-starttls", "smtp",
                          "-CAfile", str(pki / "ca.pem"), "-verify_return_error", "-brief"],
                         input="QUIT\n", capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert "CONNECTION ESTABLISHED" in out.stderr and "Verification: OK" in out.stderr
    assert "Protocol version: TLSv1.3" in out.stderr
    assert "event=tls " in srv.log_text()


def test_submission_requires_starttls_530(tls_server, pki):
    srv = tls_server()
    c = Client(srv.sub_port)
    assert c.reply()[0] == 220
    c.expect("EHLO client.example", 250)
    c.expect("HELP", 214, "2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS")
    c.expect("MAIL FROM:<alice@example.test>", 530, "5.7.0 Must issue a STARTTLS command first")
    c.expect("AUTH PLAIN " + plain_b64("alice@example.test", PASSWORD), 530, "5.7.0")
    c.expect("STARTTLS", 220)
    starttls(c, pki)
    c.expect("MAIL FROM:<alice@example.test>", 503, "5.5.1")  # reset to before EHLO
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<alice@example.test>", 530, "5.7.0 Authentication required")
    c.expect("STARTTLS", 503, "5.5.1")  # twice
    code, lines = c.cmd("HELP")  # over TLS: AUTH, no more STARTTLS
    assert code == 214 and lines[0].endswith("VRFY HELP AUTH"), lines
    c.expect("AUTH PLAIN " + plain_b64("alice@example.test", PASSWORD), 235)
    code, lines = c.cmd("HELP")
    assert code == 214 and lines[0].endswith("VRFY HELP"), lines


def test_starttls_injection_is_discarded(tls_server, pki):
    srv = tls_server()
    c = Client(srv.port)
    assert c.reply()[0] == 220
    c.expect("EHLO client.example", 250)
    # one write: STARTTLS plus commands an attacker in the middle slipped in before the handshake
    c.send(b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@attacker.example>\r\n")
    code, _ = c.reply()
    assert code == 220
    assert c.buf == b""  # nothing but the 220 came in clear text
    starttls(c, pki)
    c.expect("EHLO client.example", 250)
    c.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")  # the injected MAIL never happened
    assert "event=starttls_injection_dropped" in srv.log_text()


def test_auth_reply_codes(tls_server, pki):
    srv = tls_server(max_errors=100)
    c = submission(srv, pki, auth=False)
    c.expect("AUTH CRAM-MD5", 504, "5.5.4")
    c.expect("AUTH PLAIN", 334)
    c.expect("*", 501, "5.0.0")
    c.expect("AUTH PLAIN", 334)
    c.expect("!!!notbase64", 501, "5.5.2")
    c.expect("AUTH LOGIN", 334, "VXNlcm5hbWU6")
    c.expect("A" * 3000, 500, "5.5.6")  # bounded challenge response
    c.expect("NOOP", 250)
    c.expect("AUTH LOGIN " + base64.b64encode(b"alice@example.test").decode(), 334, "UGFzc3dvcmQ6")
    c.expect(base64.b64encode(b"wrong").decode(), 535, "5.7.8")
    c.expect("AUTH LOGIN", 334)
    c.expect(base64.b64encode(b"alice@example.test").decode(), 334)
    c.expect(base64.b64encode(PASSWORD.encode()).decode(), 235, "2.7.0")
    c.expect("AUTH PLAIN " + plain_b64("alice@example.test", PASSWORD), 503, "5.5.1")  # already
    c.expect("MAIL FROM:<mallory@example.test>", 553, "5.7.1 Sender address rejected: not owned by user")
    c.expect("MAIL FROM:<Alias@Example.test>", 250)  # an alias, any case
    c.expect("RCPT TO:<anyone@servfail.test>", 250)  # authenticated users may relay


@pytest.mark.parametrize("sender, code", [("alice+lists@example.test", 250), ("Sales+Q4@example.test", 250),
                                          ("alice+@example.test", 250), ("mallory+alice@example.test", 553),
                                          ("alicex@example.test", 553), ("+alice@example.test", 553)])
def test_sender_with_an_address_extension_is_owned(tls_server, pki, sender, code):
    """A user receives at alice+lists@ (recipient_delimiter '+') and may send from it too, as from
    an alias's extension; the part before the delimiter must still be the login or an alias."""
    c = submission(tls_server(), pki)
    c.expect(f"MAIL FROM:<{sender}>", code)


def test_sender_extension_follows_recipient_delimiter(tls_server, pki):
    c = submission(tls_server(recipient_delimiter="-"), pki)
    c.expect("MAIL FROM:<alice+lists@example.test>", 553)
    c.expect("MAIL FROM:<alice-lists@example.test>", 250)


def test_internationalized_login_and_aliases_match_in_either_form(tls_server, pki, tmp_path):
    """A user and alias listed with a U-label domain log in and send with its A-label form (all a
    client without SMTPUTF8 may write), and the other way round; case does not matter."""
    line = subprocess.run([str(BIN), "passwd", "leser@bücher.test"], input=PASSWORD + "\n", capture_output=True,
                          text=True, check=True).stdout.strip()
    users = tmp_path / "users"
    users.write_text(line + ":info@BÜCHER.test,kasse@xn--bcher-kva.test\n", encoding="utf-8")
    open_path_for_server(tmp_path)
    users.chmod(0o644)
    c = submission(tls_server(users=users), pki, auth=False)
    c.expect("AUTH PLAIN " + plain_b64("Leser@XN--BCHER-KVA.test", PASSWORD), 235, "2.7.0")
    for sender, code in [("leser@xn--bcher-kva.test", 250), ("info@xn--bcher-kva.test", 250),
                         ("leser+buch@xn--bcher-kva.test", 250), ("other@xn--bcher-kva.test", 553)]:
        c.expect(f"MAIL FROM:<{sender}>", code)
        c.expect("RSET", 250)
    c.expect("MAIL FROM:<kasse@bücher.test> SMTPUTF8", 250)


def test_auth_in_transaction_and_authzid(tls_server, pki):
    srv = tls_server(mx_auth="yes", max_errors=100)
    c = Client(srv.port)
    assert c.reply()[0] == 220
    c.expect("EHLO client.example", 250)
    c.expect("AUTH PLAIN " + plain_b64("alice@example.test", PASSWORD), 538, "5.7.11")  # MX, no TLS yet
    c.expect("STARTTLS", 220)
    starttls(c, pki)
    lines = c.expect("EHLO client.example", 250)
    assert "AUTH PLAIN LOGIN" in lines
    c.expect("MAIL FROM:<x@sender.example>", 250)
    c.expect("AUTH PLAIN " + plain_b64("alice@example.test", PASSWORD), 503, "5.5.1")
    c.expect("RSET", 250)
    # acting for someone else (authzid) is refused like a bad password
    c.expect("AUTH PLAIN " + plain_b64("alice@example.test", PASSWORD, authzid="bob@example.test"), 535)


def test_mx_does_not_offer_auth_by_default(tls_server, pki):
    srv = tls_server()
    c = Client(srv.port)
    assert c.reply()[0] == 220
    c.expect("EHLO client.example", 250)
    c.expect("STARTTLS", 220)
    starttls(c, pki)
    lines = c.expect("EHLO client.example", 250)
    assert not any(l.startswith("AUTH") for l in lines)
    c.expect("AUTH PLAIN " + plain_b64("alice@example.test", PASSWORD), 503, "5.5.1")
    c.expect("MAIL FROM:<x@sender.example>", 250)  # MX mail over TLS needs no AUTH
    c.expect("RCPT TO:<friend@elsewhere.example>", 551, "5.7.1")  # and may not relay


def test_mail_auth_parameter_is_taken_where_auth_is_offered(tls_server, pki):
    """RFC 4954 5: a server offering AUTH takes MAIL's AUTH=<> or AUTH=xtext (an MTA that
    authenticated must send AUTH=<> when it does not know the submitter), and may discard it; the
    line may be 500 octets longer for it. Refused (555) where AUTH is not offered. Before, every
    AUTH= got 555: such an MTA relaying through Postern could send no mail."""
    srv = tls_server()
    with smtplib.SMTP("127.0.0.1", srv.sub_port, timeout=20) as s:  # a real client, as a relaying MTA would
        s.starttls(context=client_ctx(pki))
        s.login("alice@example.test", PASSWORD)
        assert s.sendmail("alice@example.test", ["bob@example.test"], b"Subject: auth param\r\n\r\nx\r\n",
                          mail_options=["AUTH=<>"]) == {}
    assert len(srv.maildir_files("bob@example.test")) == 1
    c = submission(srv, pki)
    c.expect("MAIL FROM:<alice@example.test> AUTH=alice+40example.test", 250)
    c.expect("RSET", 250)
    c.expect("MAIL FROM:<alice@example.test> AUTH=bad+zz", 501, "5.5.4")  # not xtext
    c.expect("MAIL FROM:<alice@example.test> AUTH=" + "a" * 501, 501, "5.5.4")
    c.expect("MAIL FROM:<alice@example.test> AUTH=", 501, "5.5.4")
    longest = f"MAIL FROM:<alice@example.test> ENVID={'e' * 100} AUTH={'a' * 500} BODY=8BITMIME"
    assert len(longest) + 2 > 512 + 100  # room for ENVID and AUTH beyond max_command_line
    c.expect(longest, 250)
    mx = Client(srv.port)
    assert mx.reply()[0] == 220
    mx.expect("EHLO client.example", 250)
    mx.expect("MAIL FROM:<x@sender.example> AUTH=<>", 555, "5.5.4")  # no AUTH offered here


def test_wrong_password_n_times_421_with_growing_delay(tls_server, pki):
    srv = tls_server(max_auth_failures=3, auth_failure_delay=300)
    c = submission(srv, pki, auth=False)
    waits = []
    for _ in range(3):
        start = time.time()
        c.send("AUTH PLAIN " + plain_b64("alice@example.test", "bad-" + PASSWORD) + "\r\n")
        code, lines = c.reply()
        waits.append(time.time() - start)
        assert code == 535 and "5.7.8" in lines[0]
    code, lines = c.reply()
    assert code == 421 and "4.7.0" in lines[0]
    assert c.closed()
    assert waits[0] >= 0.25 and waits[1] >= 0.55 and waits[2] >= 0.85, waits  # 300, 600, 900 ms
    # the limit is per client address: a new connection is refused at AUTH at once
    c2 = submission(srv, pki, auth=False)
    c2.expect("AUTH PLAIN " + plain_b64("alice@example.test", PASSWORD), 421, "4.7.0")


def test_recipients_per_user_and_hour_are_limited(tls_server, pki):
    """max_recipient_rate_per_user: an account's 4th recipient in its hour gets 450 4.7.1, in
    another session too; unknown recipients are not counted; MX clients are not limited."""
    srv = tls_server(max_recipient_rate_per_user=3, recipient_domain_check="no")
    c = submission(srv, pki)
    c.expect("MAIL FROM:<alice@example.test>", 250)
    c.expect("RCPT TO:<nobody@example.test>", 550, "5.1.1")  # refused: not counted
    for rcpt in ("bob@example.test", "someone@far.test", "bob@example.test"):
        c.expect(f"RCPT TO:<{rcpt}>", 250)
    c.expect("RCPT TO:<carol2@far.test>", 450, "4.7.1 Sending limit reached for this account")
    c.expect("QUIT", 221)
    c = submission(srv, pki)
    c.expect("MAIL FROM:<alice@example.test>", 250)
    c.expect("RCPT TO:<bob@example.test>", 450, "4.7.1")
    c.expect("QUIT", 221)
    mx = srv.connect()  # MX traffic has no account
    mx.expect("EHLO client.example", 250)
    mx.expect("MAIL FROM:<x@far.test>", 250)
    for _ in range(4):
        mx.expect("RCPT TO:<bob@example.test>", 250)
    mx.expect("QUIT", 221)
    log = srv.log_text()
    assert log.count("event=user_rate_limited") == 1 and "user=alice@example.test limit=3" in log
    assert log.count("reason=user_rate") == 2


def test_password_never_in_log(tls_server, pki):
    srv = tls_server(log_level="debug")
    c = submission(srv, pki)  # PLAIN with initial response
    c.expect("QUIT", 221)
    c = submission(srv, pki, auth=False)
    c.expect("AUTH LOGIN", 334)
    c.expect(base64.b64encode(b"alice@example.test").decode(), 334)
    c.expect(base64.b64encode(("x" + PASSWORD).encode()).decode(), 535)
    log = srv.log_text()
    assert PASSWORD not in log
    assert plain_b64("alice@example.test", PASSWORD) not in log
    assert base64.b64encode(PASSWORD.encode()).decode()[:16] not in log
    assert "event=auth_failed" in log and "event=auth_ok" in log


def test_tls_1_0_and_1_1_refused_when_min_is_1_2(tls_server, pki):
    def old_client_handshake(srv):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version, ctx.maximum_version = ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1
        raw = socket.create_connection(("127.0.0.1", srv.smtps_port), timeout=10)
        try:
            return ctx.wrap_socket(raw).version()
        except (ssl.SSLError, ConnectionError):
            return None
        finally:
            raw.close()

    strict = tls_server()  # default tls_min_version = TLSv1.2
    assert old_client_handshake(strict) is None
    # the client can see the refusal before the server has written its log line
    wait_for(lambda: "event=tls_failed" in strict.log_text(), 5, "the server to log event=tls_failed")
    # the same client works when the floor is lowered (with CBC suites, which TLS 1.0/1.1 need):
    # so the refusal above comes from tls_min_version, not from the client
    legacy = tls_server(tls_min_version="TLSv1", tls_ciphers="DEFAULT:@SECLEVEL=0")
    assert old_client_handshake(legacy) in ("TLSv1", "TLSv1.1")


def test_failed_handshake_logged_and_closed(tls_server, pki):
    srv = tls_server()
    s = socket.create_connection(("127.0.0.1", srv.smtps_port), timeout=5)
    s.sendall(b"EHLO this is not TLS\r\n" * 4)
    s.settimeout(5)
    data = b""
    try:
        while chunk := s.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    assert b"220" not in data and b"ESMTP" not in data  # nothing leaks in clear text
    time.sleep(0.2)
    assert "event=tls_failed" in srv.log_text()
    c = Client(srv.port)  # the server goes on
    assert c.reply()[0] == 220


def test_certificate_about_to_expire_or_naming_another_host_is_warned_about(pki, tmp_path):
    """check-config (and start-up, and reload) say when the certificate expires within 14 days or
    does not name hostname: the server still starts (it works for clients that do not check)."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3", "-subj",
                    "/CN=other.example", "-keyout", tmp_path / "k.pem", "-out", tmp_path / "c.pem"], check=True,
                   capture_output=True)
    conf = tmp_path / "p.conf"
    conf.write_text(f"hostname = mx.example.test\ntls_cert = {tmp_path / 'c.pem'}\ntls_key = {tmp_path / 'k.pem'}\n")
    out = subprocess.run([str(BIN), "check-config", "-c", str(conf)], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert re.search(r'key=tls_cert detail="the certificate expires on 20\d\d-\d\d-\d\d \d\d:\d\d UTC, in [23] days: '
                     r'renew it, then reload \(SIGHUP\)"', out.stderr), out.stderr
    assert 'detail="the certificate does not name hostname mx.example.test: clients' in out.stderr
    # the test CA's certificate names mx.example.test (2 days: only the expiry is said)
    conf.write_text(f"hostname = mx.example.test\ntls_cert = {pki / 'cert.pem'}\ntls_key = {pki / 'key.pem'}\n")
    out = subprocess.run([str(BIN), "check-config", "-c", str(conf)], capture_output=True, text=True, timeout=10)
    assert "expires on" in out.stderr and "does not name" not in out.stderr
    out = subprocess.run([str(BIN), "check-config", "-c", "etc/postern.conf"], cwd=REPO, capture_output=True,
                         text=True, timeout=10)  # make-cert.sh's: 825 days, names mx.localhost
    assert out.returncode == 0 and "key=tls_cert" not in out.stderr, out.stderr


def dated_certificate(tmp_path, start, end):
    """A self-signed certificate for mx.example.test valid from start to end (YYYYMMDDHHMMSSZ):
    `openssl ca` takes any dates, an expired certificate's included."""
    d = tmp_path / f"ca-{start}"
    d.mkdir()
    (d / "index.txt").write_text("")
    (d / "serial").write_text("01\n")
    (d / "ca.cnf").write_text("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n"
                              "default_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n")
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=mx.example.test",
                    "-keyout", "k.pem", "-out", "r.csr"], cwd=d, check=True, capture_output=True)
    subprocess.run(["openssl", "ca", "-batch", "-notext", "-config", "ca.cnf", "-selfsign", "-keyfile", "k.pem", "-in",
                    "r.csr", "-out", "c.pem", "-startdate", start, "-enddate", end], cwd=d, check=True,
                   capture_output=True)
    return d / "c.pem", d / "k.pem"


@pytest.mark.parametrize("start, end, words", [
    ("20200101000000Z", "20200102000000Z", "the certificate expired on 2020-01-02 00:00 UTC: clients that check "
                                           "certificates refuse it; renew it, then reload (SIGHUP)"),
    ("20990101000000Z", "20990201000000Z", "the certificate is not valid before 2099-01-01 00:00 UTC: clients "
                                           "that check certificates refuse it until then")])
def test_expired_or_not_yet_valid_certificate_is_warned_about(tmp_path, start, end, words):
    cert, key = dated_certificate(tmp_path, start, end)
    conf = tmp_path / "p.conf"
    conf.write_text(f"hostname = mx.example.test\ntls_cert = {cert}\ntls_key = {key}\n")
    out = subprocess.run([str(BIN), "check-config", "-c", str(conf)], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and f'key=tls_cert detail="{words}"' in out.stderr, out.stderr
    assert "expires on" not in out.stderr and "does not name" not in out.stderr


def test_running_server_checks_its_certificate_again_every_interval(tls_server):
    """A server that runs for months warns while it runs (tls_cert_check_interval, a day by
    default), not only at start-up: the test CA's certificate expires in 2 days."""
    srv = tls_server(tls_cert_check_interval="1s")
    wait_for(lambda: srv.log_text().count("key=tls_cert detail=\"the certificate expires on") >= 3,
             what="the start-up warning and two more")
    quiet = tls_server(tls_cert_check_interval="0")
    time.sleep(2.5)
    assert quiet.log_text().count("key=tls_cert detail=\"the certificate expires on") == 1  # at start-up only


def closed_within(sock, seconds):
    """Reads until the server closes; how long it took (None if still open after `seconds`)."""
    t0 = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        return None
    return time.monotonic() - t0


@pytest.mark.parametrize("how", ["silent on 465", "half a ClientHello on 465", "silent after STARTTLS"])
def test_stalled_handshake_is_closed_after_command_timeout(tls_server, how):
    """A TLS handshake that never ends holds no connection past command_timeout: no reply can go out
    before it ends, so the server closes at once (it used to write its 421 into the unfinished TLS
    session and wait for it to be sent, forever)."""
    srv = tls_server(command_timeout=2)
    if how == "silent after STARTTLS":
        c = Client(srv.port)
        c.reply()
        c.cmd("EHLO client.test")
        assert c.cmd("STARTTLS")[0] == 220
        s = c.sock
    else:
        s = socket.create_connection(("127.0.0.1", srv.smtps_port), timeout=5)
        if how.startswith("half"):
            s.sendall(bytes.fromhex("16030100c801"))  # a record header and the first octet of a ClientHello
    took = closed_within(s, 15)
    assert took is not None and took < 8, f"still open (or closed late: {took})"
    assert 'error="handshake not finished in 2s (command_timeout)"' in srv.log_text()
    assert re.search(r"event=disconnect .* ended=tls_failed after=(connect|STARTTLS) ", srv.log_text())


def test_sigterm_with_a_stalled_handshake_stops(tls_server):
    """Shutdown does not wait for a TLS session that can never send its 421."""
    srv = tls_server(shutdown_grace=1, command_timeout=60)
    s = socket.create_connection(("127.0.0.1", srv.smtps_port), timeout=5)
    s.sendall(bytes.fromhex("16030100c801"))
    time.sleep(0.3)
    t0 = time.monotonic()
    srv.stop()  # asserts exit code 0 within 20 s
    assert time.monotonic() - t0 < 10
    s.close()


@pytest.mark.skipif(not shutil.which("swaks"), reason="swaks is installed by scripts/deps.sh")
def test_swaks_tls_auth(tls_server, pki):
    srv = tls_server()
    out = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(srv.sub_port), "--tls",
                          "--auth", "LOGIN", "--auth-user", "alice@example.test", "--auth-password", PASSWORD,
                          "--from", "alice@example.test", "--to", "bob@example.test", "--header",
                          "Subject: swaks tls"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "235 2.7.0 Authentication successful" in out.stdout
    assert "with ESMTPSA" in srv.maildir_files("bob@example.test")[0].read_text()


@pytest.mark.parametrize("case", ["cert not PEM", "cert missing", "key of another pair", "key empty", "key missing",
                                  "no cipher"])
def test_unusable_tls_files_or_ciphers_are_a_config_error(pki, tmp_path, case):
    """A certificate, key or cipher list the server could not use is found before it starts, as a
    config error naming the file, the line and the key with OpenSSL's reason - not a handshake
    failure later."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    shutil.copy(pki / "cert.pem", cert)
    shutil.copy(pki / "key.pem", key)
    if case == "cert not PEM":
        cert.write_text("not a certificate\n")
    elif case == "cert missing":
        cert.unlink()
    elif case == "key of another pair":
        shutil.copy(pki / "ca.key", key)
    elif case == "key empty":
        key.write_text("")
    elif case == "key missing":
        key.unlink()
    conf = tmp_path / "p.conf"
    ciphers = "tls_ciphers = NO-SUCH-CIPHER\n" if case == "no cipher" else ""
    conf.write_text(f"listen = 127.0.0.1:{free_port()}\nmail_dir = {tmp_path}/mail\nspool_dir = {tmp_path}/spool\n"
                    f"tls_cert = {cert}\ntls_key = {key}\n{ciphers}")
    out = subprocess.run([str(BIN), "check-config", "-c", str(conf)], capture_output=True, text=True, timeout=10)
    assert out.returncode != 0
    line, reason = {"cert not PEM": (4, "no start line"), "cert missing": (4, "No such file"),
                    "key of another pair": (5, "key values mismatch"), "key empty": (5, "unsupported"),
                    "key missing": (5, "No such file"), "no cipher": (6, "no cipher match")}[case]
    key_name = {4: "tls_cert", 5: "tls_key", 6: "tls_ciphers"}[line]
    assert f"{conf}:{line}: {key_name}: " in out.stderr and reason in out.stderr, out.stderr
    if line != 6:  # the file is named, and a missing one is said to be unreadable, not an OpenSSL code
        named = cert if line == 4 else key
        verb = "cannot read" if "missing" in case else "cannot use"
        assert f"{key_name}: {verb} {named}: {reason}" in out.stderr, out.stderr
    started = subprocess.run([str(BIN), "-c", str(conf)], capture_output=True, text=True, timeout=10)
    assert started.returncode != 0 and f"{conf}:{line}: {key_name}: " in started.stderr


def header_fields(text, name):
    """The values of the header fields called name in a stored message (LF lines)."""
    head = text.split("\n\n", 1)[0]
    return [line.split(":", 1)[1].strip() for line in head.split("\n")
            if line.split(":", 1)[0].strip().lower() == name.lower()]


def test_submitted_message_gets_the_message_id_and_date_it_lacks(tls_server, pki):
    # RFC 6409 8.3: the MSA SHOULD add a Message-ID a submission lacks (8.2: MAY add a Date);
    # one that has them keeps them, untouched, and MX traffic is never changed
    srv = tls_server()
    c = submission(srv, pki)
    for body in (b"Subject: bare\r\n\r\nno id, no date\r\n",
                 b"Message-Id : <own@client.example>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0100\r\n"
                 b"Subject: full\r\n\r\nhas both\r\n",
                 b"\r\nno header section at all\r\n"):
        c.expect("MAIL FROM:<alice@example.test>", 250)
        c.expect("RCPT TO:<bob@example.test>", 250)
        c.expect("DATA", 354)
        c.send(body + b".\r\n")
        assert c.reply()[0] == 250
    c.expect("QUIT", 221)
    texts = {f.read_text().split("Subject: ")[-1].split("\n")[0] if "Subject" in f.read_text() else "none":
             f.read_text() for f in srv.maildir_files("bob@example.test")}
    bare, full, none = texts["bare"], texts["full"], texts["none"]
    for text in (bare, none):
        [mid] = header_fields(text, "Message-ID")
        assert mid.startswith("<") and mid.endswith("@mx.example.test>")
        [date] = header_fields(text, "Date")
        assert date.endswith("+0000")
        assert text.index("Received:") < text.index("Message-ID:")  # after the trace field
    assert header_fields(none, "Message-ID") != header_fields(bare, "Message-ID")  # one per message
    assert header_fields(full, "Message-ID") == ["<own@client.example>"]
    assert header_fields(full, "Date") == ["Tue, 1 Dec 2026 10:00:00 +0100"]
    assert none.endswith("\n\nno header section at all\n")  # the added fields end before the body
    log = srv.log_text()  # each accepted line names the id the message carries, added or its own
    assert f" message_id={header_fields(bare, 'Message-ID')[0]}" in log and " message_id=<own@client.example>" in log


@pytest.mark.parametrize("who", ["mx", "relay_networks", "switched_off"])
def test_mx_mail_is_not_changed_and_relay_clients_get_the_fields(tls_server, who):
    srv = tls_server(relay_networks="127.0.0.0/8" if who != "mx" else "",
                     add_missing_headers="no" if who == "switched_off" else "yes")
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<sender@elsewhere.example>", 250)
    c.expect("RCPT TO:<bob@example.test>", 250)
    c.expect("DATA", 354)
    c.send(b"Subject: from afar\r\n\r\nhello\r\n.\r\n")
    assert c.reply()[0] == 250
    [f] = srv.maildir_files("bob@example.test")
    added = who == "relay_networks"
    assert len(header_fields(f.read_text(), "Message-ID")) == (1 if added else 0)
    assert len(header_fields(f.read_text(), "Date")) == (1 if added else 0)


def test_sighup_reloads_users_and_certificate(tls_server, pki, tmp_path):
    """A renewed certificate and a new user take effect at SIGHUP: new connections get them,
    a session already in TLS keeps its own; a key that does not match leaves everything as it was."""
    d = tmp_path / "live"
    d.mkdir()
    open_path_for_server(d)
    for name in ("cert.pem", "key.pem", "users"):
        (d / name).write_bytes((pki / name).read_bytes())
        (d / name).chmod(0o644)
    srv = tls_server(tls_cert=d / "cert.pem", tls_key=d / "key.pem", users=d / "users")

    def serial():
        with socket.create_connection(("127.0.0.1", srv.smtps_port), timeout=10) as raw:
            with client_ctx(pki).wrap_socket(raw, server_hostname="mx.example.test") as tls:
                return tls.getpeercert()["serialNumber"]

    old_serial = serial()
    early = submission(srv, pki)  # in TLS before the reload
    sh = lambda *a: subprocess.run(a, cwd=d, check=True, capture_output=True)  # noqa: E731
    sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=mx.example.test", "-keyout", "new.key",
       "-out", "new.csr")
    sh("openssl", "x509", "-req", "-in", "new.csr", "-CA", pki / "ca.pem", "-CAkey", pki / "ca.key",
       "-CAcreateserial", "-CAserial", d / "ca.srl", "-days", "2", "-extfile", pki / "ext.cnf", "-out", "new.pem")
    new_user = subprocess.run([str(BIN), "passwd", "bob@example.test"], input="Bobs-0wn-Passw0rd\n",
                              capture_output=True, text=True, check=True).stdout.strip()
    (d / "users").write_text((d / "users").read_text() + new_user + "\n")
    (d / "cert.pem").write_bytes((d / "new.pem").read_bytes())  # the key does not match yet
    sighup_and_wait(srv, "reload_failed")
    assert "tls_key: cannot use " + str(d / "key.pem") + ": key values mismatch" in srv.log_text()
    assert serial() == old_serial
    c = submission(srv, pki, auth=False)  # nor is the new user in yet
    c.expect("AUTH PLAIN " + plain_b64("bob@example.test", "Bobs-0wn-Passw0rd"), 535, "5.7.8")
    (d / "key.pem").write_bytes((d / "new.key").read_bytes())
    sighup_and_wait(srv, "reloaded")
    assert serial() != old_serial
    c = submission(srv, pki, auth=False)
    c.expect("AUTH PLAIN " + plain_b64("bob@example.test", "Bobs-0wn-Passw0rd"), 235, "2.7.0")
    early.expect("MAIL FROM:<alice@example.test>", 250)  # the earlier session goes on
    early.expect("RCPT TO:<bob@example.test>", 250)
    early.expect("DATA", 354)
    early.expect("Subject: across a reload\r\n\r\nbody\r\n.", 250)
    early.expect("QUIT", 221)


def test_tls_sni_picks_the_certificate_of_the_name_asked_for(tls_server, pki, tmp_path):
    """tls_sni: a client asking for mail.other.test (or any one label of *.wild.test) gets that
    name's certificate, verified with the name; other names and no name get tls_cert. Mistakes are
    errors at the table's line; certificates that do not name their entry are warned about."""
    def issue(name, sans):
        subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout",
                        f"{name}.key", "-out", f"{name}.csr"], cwd=tmp_path, check=True, capture_output=True)
        (tmp_path / f"{name}.ext").write_text(f"subjectAltName={sans}\n")
        subprocess.run(["openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", str(pki / "ca.pem"), "-CAkey",
                        str(pki / "ca.key"), "-CAcreateserial", "-CAserial", str(tmp_path / "ca.srl"), "-days", "2",
                        "-extfile", f"{name}.ext", "-out", f"{name}.pem"], cwd=tmp_path, check=True,
                       capture_output=True)
        for suffix in (".key", ".pem"):
            (tmp_path / f"{name}{suffix}").chmod(0o644)
    issue("mail.other.test", "DNS:mail.other.test")
    issue("wild", "DNS:*.wild.test")
    table = tmp_path / "sni"
    table.write_text(f"# name cert key\nMail.Other.test {tmp_path}/mail.other.test.pem {tmp_path}/mail.other.test.key\n"
                     f"*.wild.test {tmp_path}/wild.pem {tmp_path}/wild.key\n"
                     f"mx2.other.test {tmp_path}/wild.pem {tmp_path}/wild.key\n")  # names nothing it is for
    srv = tls_server(tls_sni=table)
    assert "key=tls_sni detail=\"the certificate for mx2.other.test does not name mx2.other.test" in srv.log_text()

    def subject(name, verify=True):
        ctx = client_ctx(pki)
        ctx.check_hostname = verify
        with socket.create_connection(("127.0.0.1", srv.smtps_port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=name) as tls:
                return dict(x[0] for x in tls.getpeercert()["subject"])["commonName"]
    assert subject("mail.other.test") == "mail.other.test"
    assert subject("imap.wild.test") == "wild"
    assert subject("mx.example.test") == "mx.example.test"
    assert subject("a.b.wild.test", verify=False) == "mx.example.test"  # one label only
    assert subject("127.0.0.1", verify=False) == "mx.example.test"  # no SNI for an address
    c = Client(srv.port)
    assert c.reply()[0] == 220
    c.expect("EHLO client.example", 250)
    c.expect("STARTTLS", 220)
    ctx = client_ctx(pki)
    c.sock = ctx.wrap_socket(c.sock, server_hostname="mail.other.test")  # STARTTLS too
    c.expect("EHLO client.example", 250)
    table.write_text(f"mail.other.test {tmp_path}/missing.pem {tmp_path}/wild.key\nbad_name x y\n*.wild.test a\n")
    r = subprocess.run([str(BIN), "-c", str(srv.conf_path), "check-config"], capture_output=True, text=True)
    assert r.returncode == 1
    assert f"{table}:1: tls_sni: cannot use {tmp_path}/missing.pem and {tmp_path}/wild.key: " in r.stderr
    assert f"{table}:2: tls_sni: not a host name or *.domain (ASCII): 'bad_name'" in r.stderr
    assert f"{table}:3: tls_sni: expected 'name certfile keyfile'" in r.stderr
