"""RFC 5321 command handling: greeting, EHLO, sequence, syntax, limits, every reply code."""
import re
import smtplib
import time

from conftest import wait_for


def test_greeting_names_host(server):
    c = server.connect(greet=False)
    code, lines = c.reply()
    assert code == 220 and lines[0] == "mx.example.test ESMTP Postern"


def test_ehlo_advertises_extensions(server):
    c = server.connect()
    lines = c.expect("EHLO client.example", 250)
    assert lines[0].startswith("mx.example.test")
    assert lines[1:] == ["PIPELINING", "SIZE 36700160", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN",
                         "CHUNKING"]


def test_helo_and_missing_argument(server):
    c = server.connect()
    c.expect("EHLO", 501, "5.5.4 Syntax: EHLO hostname")
    c.expect("HELO", 501, "5.5.4 Syntax: HELO hostname")
    c.expect("HELO client.example", 250)
    c.expect("MAIL FROM:<a@b.example>", 250, "2.1.0")
    # ESMTP parameters need EHLO
    c.expect("RSET", 250)
    c.expect("MAIL FROM:<a@b.example> SIZE=10", 555, "5.5.4")


def test_commands_case_insensitive(server):
    c = server.connect()
    c.expect("ehlo client.example", 250)
    c.expect("mail from:<a@b.example>", 250)
    c.expect("rcpt to:<alice@example.test>", 250, "2.1.5")
    c.expect("rset", 250)
    c.expect("nOoP", 250, "2.0.0")
    c.expect("quit", 221, "2.0.0")


def test_unknown_command(server):
    c = server.connect()
    c.expect("FOO bar", 500, "5.5.2")
    c.expect("EXPN list", 502, "5.5.1")
    c.expect("NOOP", 250)


def test_bad_sequence(server):
    """Out-of-order commands get 503 5.5.1 saying what must come first."""
    c = server.connect()
    c.expect("MAIL FROM:<a@b.example>", 503, "5.5.1 Bad sequence of commands: send EHLO or HELO first")
    c.expect("EHLO client.example", 250)
    c.expect("RCPT TO:<alice@example.test>", 503, "5.5.1 Bad sequence of commands: send MAIL first")
    c.expect("DATA", 503, "5.5.1 Bad sequence of commands: send MAIL first")
    c.expect("MAIL FROM:<a@b.example>", 250)
    c.expect("MAIL FROM:<a@b.example>", 503, "5.5.1 Sender already specified")
    c.expect("DATA", 554, "5.5.1")  # no valid recipient
    c.expect("RCPT TO:<nobody@example.test>", 550)
    c.expect("DATA", 554, "5.5.1")


def test_bad_arguments(make_server):
    c = make_server(max_errors=100).connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL <a@b.example>", 501, "5.5.4")
    c.expect("MAIL FROM:", 501, "5.5.4")
    c.expect("MAIL FROM:<a@b.example> SIZE=abc", 501, "5.5.4")
    c.expect("MAIL FROM:<a@b.example> BODY=9BIT", 501, "5.5.4")
    c.expect("MAIL FROM:<a@b.example> =", 501, "5.5.4")
    c.expect('MAIL FROM:<a@b.example> "', 501, "5.5.4")
    c.expect('MAIL FROM:<a@b.example> A"=', 501, "5.5.4")
    c.expect("MAIL FROM:<a@b.example> FOO=BAR", 555, "5.5.4")
    c.expect("MAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME", 250)
    c.expect("RCPT alice@example.test", 501, "5.5.4")
    c.expect("RCPT TO:<alice@example.test> XFOO=1", 555, "5.5.4")
    c.expect("RCPT TO:<alice@example.test> NOTIFY=NEVER,SUCCESS", 501, "5.5.4")
    c.expect("RSET extra", 501, "5.5.4")
    c.expect("QUIT now", 501, "5.5.4")
    c.expect("DATA now", 501, "5.5.4")


def test_vrfy_help_noop_rset_quit(server):
    c = server.connect()
    c.expect("VRFY alice", 252, "2.5.0")
    c.expect("VRFY", 501, "5.5.4")
    code, lines = c.cmd("HELP")  # no TLS configured: neither STARTTLS nor AUTH
    assert code == 214 and lines[0].endswith("2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP"), lines
    c.expect("NOOP", 250, "2.0.0")
    c.expect("RSET", 250, "2.0.0")
    c.expect("QUIT", 221, "2.0.0")
    assert c.closed()


def test_line_too_long_and_session_goes_on(server):
    c = server.connect()
    c.expect("EHLO client.example", 250)
    c.expect("NOOP " + "x" * 505, 250)  # 512 octets with CRLF: allowed
    c.expect("NOOP " + "x" * 506, 500, "5.5.2")  # 513: too long
    # MAIL and RCPT may be 500 octets longer (DSN parameters, RFC 3461): the path is then judged
    c.expect("MAIL FROM:<" + "a" * 600 + "@b.example>", 553, "5.1.7")
    c.expect("MAIL FROM:<" + "a" * 1100 + "@b.example>", 500, "5.5.2")
    c.expect("NOOP", 250)
    c.send("NOOP " + "y" * 100000 + "\r\n")  # far over, arrives in many reads
    code, lines = c.reply()
    assert code == 500 and "5.5.2" in lines[0]
    c.expect("MAIL FROM:<a@b.example>", 250)


def test_nul_in_command(server):
    c = server.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<a@b.example>\0", 500, "5.5.2")
    c.expect("NOOP", 250)


def test_accept_mail_no_gives_521(make_server):
    srv = make_server(accept_mail="no")
    c = srv.connect(greet=False)
    code, lines = c.reply()
    assert code == 521 and lines[0] == "5.3.2 mx.example.test does not accept mail"
    c.expect("EHLO client.example", 521, "5.3.2")
    c.expect("MAIL FROM:<a@b.example>", 521, "5.3.2")
    c.expect("NOOP", 521, "5.3.2")
    c.expect("QUIT", 221)


def test_too_many_errors_closes(make_server):
    srv = make_server(max_errors=3)
    c = srv.connect()
    c.expect("BAD1", 500)
    c.expect("BAD2", 500)
    c.send("BAD3\r\n")
    assert c.reply()[0] == 500
    code, lines = c.reply()
    assert code == 421 and "4.7.0" in lines[0]
    assert c.closed()


def test_command_timeout(make_server):
    srv = make_server(command_timeout="1s")
    c = srv.connect()
    start = time.time()
    code, lines = c.reply()
    assert code == 421 and "4.4.2" in lines[0]
    assert 0.5 < time.time() - start < 5
    assert c.closed()


def test_connection_limit(make_server):
    srv = make_server(max_connections_per_ip=2)
    a, b = srv.connect(), srv.connect()
    c = srv.connect(greet=False)
    code, lines = c.reply()
    assert code == 421 and "4.7.0" in lines[0]
    assert c.closed()
    a.expect("NOOP", 250)  # existing sessions are unaffected
    b.expect("QUIT", 221)
    a.close()


def test_pipelined_batch_replies_in_order(server):
    c = server.connect()
    batch = ("EHLO client.example\r\nMAIL FROM:<s@sender.example>\r\nRCPT TO:<alice@example.test>\r\n"
             "RCPT TO:<nobody@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
             "Subject: pipelined\r\n\r\nbody\r\n.\r\n"
             "MAIL FROM:<s2@sender.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nsecond\r\n.\r\n"
             "NOOP\r\nQUIT\r\n")
    c.send(batch)
    codes = [c.reply()[0] for _ in range(13)]
    assert codes == [250, 250, 250, 550, 250, 354, 250, 250, 250, 354, 250, 250, 221]
    assert len(server.maildir_files("alice@example.test")) == 1
    assert len(server.maildir_files("bob@example.test")) == 2


def test_disconnect_line_sums_up_each_connection(make_server):
    """One info line per connection says how it went: what it did, and how it ended - QUIT, a
    closing reply of ours, or the client going away after its last command."""
    srv = make_server(max_errors=2, log_level="info")
    c = srv.connect()
    c.send("EHLO client.example\r\nMAIL FROM:<s@sender.example>\r\nRCPT TO:<alice@example.test>\r\n"
           "RCPT TO:<nobody@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n")
    assert [c.reply()[0] for _ in range(8)] == [250, 250, 250, 550, 250, 354, 250, 221]
    assert c.closed()
    lost = srv.connect()
    lost.expect("EHLO client.example", 250)
    lost.expect("MAIL FROM:<s@sender.example>", 250)
    lost.expect("RCPT TO:<alice@example.test>", 250)
    lost.close()
    rude = srv.connect()
    rude.expect("BAD1", 500)
    rude.send("BAD2\r\n")
    assert rude.reply()[0] == 500 and rude.reply()[0] == 421
    assert rude.closed()
    wait_for(lambda: srv.log_text().count("event=disconnect ") >= 4, what="disconnect lines")  # + start probe
    log = srv.log_text()
    assert re.search(r"event=disconnect session=\w+ client=127\.0\.0\.1 duration=[0-9.]+s ended=quit "
                     r"commands=7 messages=1 rcpts=2/3 errors=0\n", log), log
    assert re.search(r"event=disconnect .* ended=client_closed after=RCPT commands=3 messages=0 rcpts=1/1 ", log), log
    assert re.search(r"event=disconnect .* ended=server reply=421 commands=2 messages=0 rcpts=0/0 errors=2", log), log


def test_smtplib_session(server):
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as s:
        code, _ = s.ehlo("client.example")
        assert code == 250 and s.has_extn("pipelining") and s.has_extn("smtputf8")
        assert int(s.esmtp_features["size"]) == 36700160
        s.sendmail("sender@example.org", ["alice@example.test"], b"Subject: smtplib\r\n\r\nhi\r\n")
    assert len(server.maildir_files("alice@example.test")) == 1
