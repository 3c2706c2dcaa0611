"""header_checks: the administrator's regular-expression rules on header fields, through the real
binary - REJECT (550 5.7.1 with the rule's text, nothing stored), DISCARD (250, nothing stored,
logged), WARN (logged, taken), fields
unfolded, only the header section looked at, mistakes named file:line, and a reload."""
import re
import smtplib

import pytest
from conftest import check_config, sighup_and_wait

RULES = r"""# header rules
/^Subject:.*viagra/i REJECT Spam subjects are not accepted here
/^X-Mailer: Bulk/ WARN
/^Subject: hello world-foo$/ REJECT folded
/^X-Path: a\/b$/ REJECT
/^Subject: .*lottery/i DISCARD lottery scam
"""


@pytest.fixture
def checked(make_server, tmp_path):
    table = tmp_path / "header_checks"
    table.write_text(RULES)
    srv = make_server(header_checks=table)
    srv.table = table
    return srv


def data_reply(srv, text):
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<s@sender.example>", 250)
    c.expect("RCPT TO:<alice@example.test>", 250)
    c.expect("DATA", 354)
    c.send(text + b"\r\n.\r\n")
    return c.reply()


def test_a_reject_rule_refuses_the_message_with_its_text(checked):
    with smtplib.SMTP("127.0.0.1", checked.port) as client:  # a real client
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("s@sender.example", ["alice@example.test"], b"Subject: Cheap VIAGRA now\r\n\r\nbuy\r\n")
    assert refused.value.smtp_code == 550
    assert refused.value.smtp_error == b"5.7.1 Message content rejected: Spam subjects are not accepted here"
    assert checked.maildir_files("alice@example.test") == []
    log = checked.log_text()
    assert 'event=rejected' in log and 'detail="header_checks line 2: Subject: Cheap VIAGRA now"' in log


def test_fields_are_unfolded_and_a_slash_can_be_escaped(checked):
    code, lines = data_reply(checked, b"From: a@b.example\r\nSubject: hello\r\n world-foo\r\n\r\nx")
    assert (code, lines) == (550, ["5.7.1 Message content rejected: folded"])
    code, lines = data_reply(checked, b"X-Path: a/b\r\n\r\nx")
    assert code == 550 and lines[0].endswith("refused by this server's content rules")
    code, _ = data_reply(checked, b"X-Path: a/bc\r\n\r\nx")  # the rule is anchored
    assert code == 250


def test_warn_logs_and_takes_the_message_and_the_body_is_not_looked_at(checked):
    code, _ = data_reply(checked, b"X-Mailer: Bulk Sender 2.0\r\nSubject: news\r\n\r\nSubject: viagra\r\n")
    assert code == 250 and len(checked.maildir_files("alice@example.test")) == 1
    assert 'event=header_warning' in checked.log_text() and 'rule_line=3 field="X-Mailer: Bulk Sender 2.0"' in \
        checked.log_text()
    code, _ = data_reply(checked, b"\r\nSubject: viagra")  # no header section at all
    assert code == 250


def test_discard_answers_250_stores_nothing_and_logs_why(make_server, tmp_path):
    """The client is told 250 (no retry, no bounce to a forged sender) and nothing is stored; the
    log and the metrics say so; the session's next message is stored as usual."""
    from conftest import free_port
    from test_metrics import values
    table = tmp_path / "header_checks"
    table.write_text(RULES)
    mport = free_port()
    srv = make_server(header_checks=table, metrics_listen=f"127.0.0.1:{mport}")
    with smtplib.SMTP("127.0.0.1", srv.port) as client:  # a real client
        client.ehlo("client.example")
        client.mail("s@sender.example")
        client.rcpt("alice@example.test")
        code, text = client.data(b"Subject: You WON the Lottery\r\n\r\nclaim now\r\n")
        assert code == 250 and text.startswith(b"2.0.0 Ok: queued as "), text
        qid = text.split()[-1].decode()
        client.sendmail("s@sender.example", ["alice@example.test"], b"Subject: minutes\r\n\r\nattached\r\n")
    files = srv.maildir_files("alice@example.test")
    assert len(files) == 1 and b"Subject: minutes" in files[0].read_bytes()
    log = srv.log_text()
    assert re.search(rf"event=discarded session=\d+ qid={qid} client=127.0.0.1 sender=<s@sender.example> "
                     rf"rcpts=<alice@example.test> size=\d+ reply=250 ", log), log
    assert 'reply=250 detail="header_checks line 6: Subject: You WON the Lottery: lottery scam"' in log, log
    assert "event=accepted session" in log and log.count("event=discarded") == 1
    got = values(mport)
    assert got["postern_messages_discarded_total"] == 1 and got["postern_messages_accepted_total"] == 1


def test_a_reload_replaces_the_rules(checked):
    checked.table.write_text("/^Subject: news$/ REJECT no news today\n")
    sighup_and_wait(checked, "reloaded")
    assert data_reply(checked, b"Subject: news\r\n\r\nx") == (550, ["5.7.1 Message content rejected: no news today"])
    assert data_reply(checked, b"Subject: viagra\r\n\r\nx")[0] == 250


@pytest.mark.parametrize("line,error", [
    ("/a(/ REJECT", "regex: not a valid POSIX extended regular expression"),
    ("/x/ HOLD", "action: expected REJECT [text], DISCARD [text] or WARN"),
    ("/x REJECT", "regex: no closing /"),
    ("x/ REJECT", "expected /regex/ first"),
    ("/x/ REJECT 100% sure", "text: printable ASCII without %"),
    ("/x/ WARN loudly", "action: expected REJECT [text], DISCARD [text] or WARN"),
    ("/x/ DISCARD 50% off", "text: printable ASCII without %"),
    ("/x/g REJECT", "expected 'ACTION' after /regex/"),
])
def test_mistakes_are_named_with_their_line(tmp_path, line, error):
    table = tmp_path / "rules"
    table.write_text("/^Subject: ok/ WARN\n" + line + "\n")
    conf = tmp_path / "p.conf"
    conf.write_text(f"header_checks = {table}\n")
    r = check_config(conf)
    assert r.returncode == 1 and f"{table}:2: header_checks: {error}" in r.stderr, r.stderr


def test_only_the_first_256_kib_of_the_header_section_are_looked_at(checked):
    """The rules run on the event loop: a header section of megabytes must not stall it."""
    junk = b"".join(b"X-Junk-%d: %s\r\n" % (i, b"j" * 60) for i in range(5000))  # about 390 KiB
    code, _ = data_reply(checked, junk + b"Subject: viagra\r\n\r\nx")
    assert code == 250
    code, _ = data_reply(checked, b"Subject: viagra\r\n" + junk + b"\r\nx")
    assert code == 550
