"""mime_header_checks and body_checks through the real binary: rules as header_checks' matched
against the header fields of MIME parts and attached messages (attachment names), and against
the lines of the text outside every header block; messages built by Python's email package and
sent by smtplib (real clients), nesting, the size bounds, WARN, a reload, mistakes named."""
import smtplib
from email.message import EmailMessage

import pytest
from conftest import check_config, sighup_and_wait

MIME_RULES = r"""# attachments
/^Content-(Disposition|Type):.*name="?[^"]*\.(exe|scr|js)"?$/i REJECT Executable attachments are not accepted
/^Content-Type: application\/pdf/ WARN
"""
BODY_RULES = r"""/free money/i REJECT No spam phrases
/^unsubscribe-tracker/ WARN
/^-----BEGIN PHISH KIT/ DISCARD phishing kit
"""


@pytest.fixture
def checked(make_server, tmp_path):
    mime, body = tmp_path / "mime_header_checks", tmp_path / "body_checks"
    mime.write_text(MIME_RULES)
    body.write_text(BODY_RULES)
    srv = make_server(mime_header_checks=mime, body_checks=body, body_checks_size_limit="4K")
    srv.mime, srv.body = mime, body
    return srv


def message(text="Hello,\nsee attached.\n", attachment=None, subject="files"):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "s@sender.example", "alice@example.test", subject
    m.set_content(text)
    if attachment:
        m.add_attachment(b"MZ\x90\x00binary" * 20, maintype="application", subtype="octet-stream",
                         filename=attachment)
    return m


def sendmail(srv, msg):
    """(code, text) of the end of data, smtplib's way."""
    with smtplib.SMTP("127.0.0.1", srv.port) as client:
        try:
            client.send_message(msg)  # CRLF line ends (email.policy.SMTP)
            return 250, b""
        except smtplib.SMTPDataError as e:
            return e.smtp_code, e.smtp_error


def test_an_executable_attachment_is_refused_and_a_document_taken(checked):
    code, text = sendmail(checked, message(attachment="invoice.exe"))
    assert (code, text) == (550, b"5.7.1 Message content rejected: Executable attachments are not accepted")
    assert checked.maildir_files("alice@example.test") == []
    log = checked.log_text()
    assert "detail=\"mime_header_checks line 2: Content-Disposition: attachment; filename='invoice.exe'\"" in log
    assert sendmail(checked, message(attachment="invoice.txt"))[0] == 250
    assert len(checked.maildir_files("alice@example.test")) == 1


def test_an_attachment_inside_a_forwarded_message_is_found(checked):
    """A message/rfc822 part whose own multipart carries the .exe: two levels down."""
    outer = message(text="forwarding this\n")
    outer.add_attachment(message(attachment="tool.SCR"))
    assert b"message/rfc822" in outer.as_bytes()
    code, _ = sendmail(checked, outer)
    assert code == 550
    clean = message(text="forwarding this\n")
    clean.add_attachment(message(attachment="notes.txt"))
    assert sendmail(checked, clean)[0] == 250


def test_the_messages_own_header_is_not_mime_header_checks_business(checked):
    """A single-part message naming an .exe in its own Content-Type: header_checks' field, not a
    part's (and the same words in the text are not a header field at all)."""
    raw = (b"From: s@sender.example\r\nSubject: x\r\nContent-Type: application/octet-stream; name=\"a.exe\"\r\n"
           b"\r\nContent-Disposition: attachment; filename=\"b.exe\"\r\n")
    with smtplib.SMTP("127.0.0.1", checked.port) as client:
        client.sendmail("s@sender.example", ["alice@example.test"], raw)
    assert len(checked.maildir_files("alice@example.test")) == 1


def test_body_checks_match_text_lines_not_header_fields(checked):
    assert sendmail(checked, message(text="Get FREE money today!\n"))[0] == 550
    assert 'detail="body_checks line 1: Get FREE money today!"' in checked.log_text()
    assert sendmail(checked, message(subject="free money"))[0] == 250  # the message's own field
    part_field = message(attachment="x.txt")
    part_field.get_payload()[1]["X-Note"] = "free money"  # a part's field: mime_header_checks' domain
    assert sendmail(checked, part_field)[0] == 250
    assert len(checked.maildir_files("alice@example.test")) == 2


def test_a_discard_rule_in_a_part_takes_the_message_and_stores_nothing(checked):
    m = message(text="Hello\n")
    m.add_attachment("-----BEGIN PHISH KIT-----\nfake login page\n", subtype="plain", filename="notes.txt")
    assert sendmail(checked, m)[0] == 250
    assert checked.maildir_files("alice@example.test") == []
    assert 'event=discarded' in checked.log_text() and \
        'detail="body_checks line 3: -----BEGIN PHISH KIT-----: phishing kit"' in checked.log_text()


def test_warn_rules_log_and_take_the_message(checked):
    m = message(text="unsubscribe-tracker 42\nhello\n")
    m.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="a.pdf")
    assert sendmail(checked, m)[0] == 250
    log = checked.log_text()
    assert "event=body_warning" in log and 'table=body_checks rule_line=2 line="unsubscribe-tracker 42"' in log
    assert "event=header_warning" in log and "table=mime_header_checks rule_line=3 field=\"Content-Type: " \
        "application/pdf" in log


def test_body_checks_look_only_at_the_first_body_checks_size_limit_octets(checked):
    filler = "".join(f"line {i} of ordinary text, nothing to see\n" for i in range(150))  # about 6 KiB
    assert sendmail(checked, message(text=filler + "free money\n"))[0] == 250
    assert sendmail(checked, message(text="free money\n" + filler))[0] == 550


def test_part_fields_beyond_256_kib_are_not_looked_at(checked):
    """The bound of mime_header_checks, both ways: 4,000 parts of about 80 octets of fields each."""
    def many_parts(exe_first):
        parts = [("evil.exe" if exe_first else f"p{i}.txt") if i == 0 else
                 ("evil.exe" if i == 3999 and not exe_first else f"p{i}.txt") for i in range(4000)]
        body = "".join(f"--b\nContent-Type: text/plain\nContent-Disposition: attachment; filename=\"{p}\"\n\nx\n"
                       for p in parts)
        return ("From: s@sender.example\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n"
                + body + "--b--\n").replace("\n", "\r\n").encode()
    for exe_first, expected in [(False, 250), (True, 550)]:
        with smtplib.SMTP("127.0.0.1", checked.port) as client:
            try:
                client.sendmail("s@sender.example", ["alice@example.test"], many_parts(exe_first))
                code = 250
            except smtplib.SMTPDataError as e:
                code = e.smtp_code
        assert code == expected, exe_first


def test_deep_nesting_is_walked_to_32_levels_and_is_text_below(checked):
    def nested(depth, name):
        text = f"Content-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"{name}\"\n\nx\n"
        for d in range(depth):
            text = f"Content-Type: multipart/mixed; boundary=\"b{d}\"\n\n--b{d}\n{text}--b{d}--\n"
        return ("From: s@sender.example\nMIME-Version: 1.0\n" + text).replace("\n", "\r\n").encode()
    for depth, expected in [(32, 550), (40, 250)]:  # at 40 levels the part is text, not fields
        with smtplib.SMTP("127.0.0.1", checked.port) as client:
            try:
                client.sendmail("s@sender.example", ["alice@example.test"], nested(depth, "deep.exe"))
                code = 250
            except smtplib.SMTPDataError as e:
                code = e.smtp_code
        assert code == expected, depth


def test_a_reload_replaces_both_tables(checked):
    checked.mime.write_text("/filename=\"report\\.txt\"/ REJECT no reports\n")
    checked.body.write_text("/^hello there$/ REJECT no greetings\n")
    sighup_and_wait(checked, "reloaded")
    assert sendmail(checked, message(attachment="report.txt"))[1].endswith(b"no reports")
    assert sendmail(checked, message(text="hello there\n"))[1].endswith(b"no greetings")
    assert sendmail(checked, message(attachment="evil.exe", text="free money\n"))[0] == 250


@pytest.mark.parametrize("key", ["mime_header_checks", "body_checks"])
def test_mistakes_are_named_with_their_line(tmp_path, key):
    table = tmp_path / "rules"
    table.write_text("/ok/ WARN\n/a(/ REJECT\n")
    conf = tmp_path / "p.conf"
    conf.write_text(f"{key} = {table}\n")
    r = check_config(conf)
    assert r.returncode == 1 and f"{table}:2: {key}: regex: not a valid POSIX extended" in r.stderr, r.stderr
