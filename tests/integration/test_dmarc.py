"""DMARC (dmarc_policy, RFC 7489) through the real binary: From domains whose policy records the
test DNS server publishes (conftest: dkim.test p=reject sp=quarantine, spf-pass.test p=none with
strict SPF alignment, pct0.test p=reject pct=0, broken.test), messages signed by python3-dkim or
not, sent with smtplib from SPF-passing or other senders; the Authentication-Results field of the
delivered copy, or the refusal, is checked."""
import email
import os
import re
import smtplib

from conftest import check_config, wait_for
from test_dkim_verify import signed


def text(from_addr, extra=b""):
    return (b"From: " + from_addr.encode() + b"\r\nTo: alice@example.test\r\nSubject: DMARC\r\n" + extra +
            b"Date: Thu, 03 Dec 2026 12:00:00 +0000\r\nMessage-ID: <d@x.test>\r\n\r\nHello.\r\n")


def send(srv, sender, message):
    """Sends; the dmarc= part of the delivered copy's Authentication-Results, or the refusal."""
    before = len(srv.maildir_files("alice@example.test"))
    try:
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as c:
            c.sendmail(sender, ["alice@example.test"], message)
    except smtplib.SMTPDataError as e:
        return f"{e.smtp_code} {e.smtp_error.decode()}"
    files = wait_for(lambda: srv.maildir_files("alice@example.test")[before:] or None)
    field = " ".join(email.message_from_bytes(files[-1].read_bytes())["Authentication-Results"].split())
    return next(part.strip() for part in field.split(";") if part.strip().startswith("dmarc="))


def cases():
    """(sender, message, the dmarc= part expected); the signed ones need the run's DKIM keys."""
    return [
        ("carol@elsewhere.example", signed("rsa", text("carol@dkim.test")) + text("carol@dkim.test"),
         "dmarc=pass (p=reject dis=none) header.from=dkim.test"),  # DKIM d= the From domain
        ("news@news.dkim.test", signed("rsa", text("x@news.dkim.test")) + text("x@news.dkim.test"),
         "dmarc=pass (p=quarantine dis=none) header.from=news.dkim.test"),  # relaxed: same org domain
        ("carol@spf-pass.test", text("carol@dkim.test"),
         "dmarc=fail (p=reject dis=reject) header.from=dkim.test"),  # SPF passes for another domain
        ("carol@elsewhere.example", text("x@news.dkim.test"),
         "dmarc=fail (p=quarantine dis=quarantine) header.from=news.dkim.test"),  # sp= of the org domain
        ("carol@spf-pass.test", text("carol@spf-pass.test"),
         "dmarc=pass (p=none dis=none) header.from=spf-pass.test"),  # SPF aligned
        ("carol@spf-pass.test", text("carol@sub.spf-pass.test"),
         "dmarc=fail (p=none dis=none) header.from=sub.spf-pass.test"),  # aspf=s: a subdomain is not aligned
        ("carol@elsewhere.example", text("carol@pct0.test"),
         "dmarc=fail (p=reject dis=quarantine) header.from=pct0.test"),  # pct=0: one step milder
        ("carol@elsewhere.example", text("carol@elsewhere.example"), "dmarc=none header.from=elsewhere.example"),
        ("carol@elsewhere.example", text("carol@broken.test"),
         'dmarc=permerror reason="policy record is not valid" header.from=broken.test'),
        ("carol@elsewhere.example", text("carol@two-dmarc.test"),
         'dmarc=none reason="several policy records" header.from=two-dmarc.test'),  # RFC 7489 6.6.3
        ("carol@elsewhere.example", text("carol@servfail.test"),
         'dmarc=temperror reason="policy record lookup failed" header.from=servfail.test'),
        # the author domain (RFC 7489 6.6.1): every From mailbox must name one domain - else no
        # policy would be applied to a domain a reader may be shown (the DMARC bypass of two From)
        ("carol@elsewhere.example", text("carol@dkim.test", b"From: eve@evil.test\r\n"),
         'dmarc=permerror reason="author unclear: 2 From fields"'),
        ("carol@elsewhere.example", text("eve@evil.test, carol@dkim.test"),
         'dmarc=permerror reason="author unclear: From addresses in several domains"'),
        ("carol@elsewhere.example", text("carol@dkim.test, Undisclosed"),
         'dmarc=permerror reason="author unclear: From addresses, one without a domain"'),
        ("carol@elsewhere.example", text(",\r\n ".join(f"u{i}@evil.test" for i in range(64)) + ", carol@dkim.test"),
         'dmarc=permerror reason="author unclear: more than 64 From addresses"'),  # none left unread
        ("carol@spf-pass.test", text("carol@dkim.test, dave@DKIM.test"),
         "dmarc=fail (p=reject dis=reject) header.from=dkim.test"),  # one domain: checked as such
        ("carol@spf-pass.test", text("carol@spf-pass.test", b"From: <dave@spf-pass.test>,\r\n"),
         "dmarc=pass (p=none dis=none) header.from=spf-pass.test"),  # two fields, one domain
        ("carol@elsewhere.example", text("\"carol@dkim.test\"").replace(b"From:", b"X-From:", 1),
         'dmarc=permerror reason="no From domain"'),
    ]


def test_results_for_each_kind_of_from_domain_and_alignment(make_server):
    srv = make_server(dkim_verify="yes", spf_policy="header", dmarc_policy="header")
    for sender, message, expected in cases():
        assert send(srv, sender, message) == expected, (sender, message[:120])
    log = srv.log_text()
    assert "event=dmarc session=" in log and "from_domain=dkim.test result=fail disposition=reject" in log


def test_reject_refuses_a_fail_where_the_domain_asks_p_reject(make_server):
    srv = make_server(dkim_verify="yes", spf_policy="header", dmarc_policy="reject")
    refused = 0
    for sender, message, expected in cases():
        got = send(srv, sender, message)
        unclear = re.search(r'author unclear: ([^"]+)"', expected)
        if "dis=reject" in expected:
            assert got == "550 5.7.1 Message refused by the DMARC policy of dkim.test", got
        elif unclear:
            assert got == f"550 5.7.1 Message refused: {unclear[1]}, so DMARC cannot tell which domain it is from", got
        else:
            assert got == expected, (sender, got)
        refused += got.startswith("550")
    assert refused == 6
    assert len(srv.maildir_files("alice@example.test")) == len(cases()) - refused
    assert re.search(r"event=rejected .* reply=550 .*detail=\"DMARC policy reject\"", srv.log_text())
    assert re.search(r"event=rejected .* reply=550 .*detail=\"DMARC author unclear\"", srv.log_text())


def test_dmarc_policy_needs_dkim_and_spf(tmp_path):
    conf = tmp_path / "postern.conf"
    conf.write_text("hostname = mx.example.test\nlocal_domains = example.test\ndmarc_policy = reject\n")
    r = check_config(conf)
    assert r.returncode == 1
    assert f"{conf}:3: dmarc_policy: needs dkim_verify = yes and spf_policy = header or reject" in r.stderr


def test_quarantined_mail_goes_to_the_folder_named(make_server):
    """dmarc_quarantine_folder: under dmarc_policy = reject, the local copies of a fail whose domain
    asks p=quarantine go to <mailbox>/.Junk (a Maildir++ folder, made on first use) - small mail
    through the journal, 100 KiB mail through the direct path; passing mail stays in the inbox; a
    folder name that is no plain word is refused at check-config."""
    srv = make_server(dkim_verify="yes", spf_policy="header", dmarc_policy="reject",
                      dmarc_quarantine_folder="Junk")
    big = b"x" * 100 + b"\r\n"
    for message in (text("x@news.dkim.test"), text("x@news.dkim.test") + big * 1000):
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as c:
            c.sendmail("carol@elsewhere.example", ["alice@example.test", "bob@example.test"], message)
    assert send(srv, "carol@spf-pass.test", text("carol@spf-pass.test")).startswith("dmarc=pass")
    for user in ("alice", "bob"):
        junk = sorted((srv.mail_dir / "example.test" / user / ".Junk" / "new").iterdir())
        assert len(junk) == 2 and all(b"dis=quarantine" in f.read_bytes() for f in junk), user
        assert sorted(len(f.read_bytes()) // 1000 for f in junk)[1] >= 100
    assert len(srv.maildir_files("alice@example.test")) == 1 and not srv.maildir_files("bob@example.test")
    assert "disposition=quarantine folder=Junk" in srv.log_text()
    conf = srv.root / "bad.conf"
    conf.write_text(srv.conf_path.read_text().replace("dmarc_quarantine_folder = Junk",
                                                      "dmarc_quarantine_folder = ../x"))
    r = check_config(conf)
    assert r.returncode == 1 and "dmarc_quarantine_folder: a folder name of letters, digits, - and _" in r.stderr


def test_a_held_quarantine_folder_sends_the_copies_to_the_inbox(make_server):
    """A quarantine folder that cannot take mail (.Junk/new read-only) fails its first message (451)
    and is held: the next quarantined messages go to the inbox, still marked dis=quarantine,
    instead of failing again; once it is repaired a probe releases it, and quarantined mail goes
    to the folder again."""
    srv = make_server(dkim_verify="yes", spf_policy="header", dmarc_policy="reject",
                      dmarc_quarantine_folder="Junk", mailbox_recheck_interval="1s")

    def quarantined(n):
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as c:
            c.sendmail("carol@elsewhere.example", ["alice@example.test"],
                       text("x@news.dkim.test", f"X-N: {n}\r\n".encode()))
    quarantined(0)
    junk_new = srv.mail_dir / "example.test" / "alice" / ".Junk" / "new"
    assert len(list(junk_new.iterdir())) == 1
    os.chmod(junk_new, 0o555)
    try:
        try:
            quarantined(1)
            raise AssertionError("a message for a folder that cannot take it was accepted")
        except smtplib.SMTPDataError as e:
            assert e.smtp_code == 451
        assert f"event=mailbox_held dir={srv.mail_dir}/example.test/alice/.Junk " in srv.log_text()
        quarantined(2)  # the folder is held: the inbox takes it
        inbox = srv.maildir_files("alice@example.test")
        assert len(inbox) == 1 and b"X-N: 2" in inbox[0].read_bytes() and b"dis=quarantine" in inbox[0].read_bytes()
        assert "disposition=quarantine folder_held=Junk" in srv.log_text()
    finally:
        os.chmod(junk_new, 0o700)
    wait_for(lambda: "event=mailbox_released" in srv.log_text(), timeout=5, what="the probe releasing .Junk")
    quarantined(3)
    assert len(list(junk_new.iterdir())) == 2 and len(srv.maildir_files("alice@example.test")) == 1


def test_quarantined_mail_lost_in_a_crash_is_restored_to_its_folder(make_server):
    """The journal's records name the folder: after a kill -9 before the checkpoint, the copies a
    power cut took from .Junk/new are put back there."""
    srv = make_server(dkim_verify="yes", spf_policy="header", dmarc_policy="reject",
                      dmarc_quarantine_folder="Junk", journal_checkpoint_interval="1h")
    for i in range(3):
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as c:
            c.sendmail("carol@elsewhere.example", ["alice@example.test"],
                       text("x@news.dkim.test", f"X-N: {i}\r\n".encode()))
    srv.kill9()
    junk = srv.mail_dir / "example.test" / "alice" / ".Junk" / "new"
    before = {p.name: p.read_bytes() for p in junk.iterdir()}
    assert len(before) == 3
    for p in junk.iterdir():
        p.unlink()
    srv.start()
    assert {p.name: p.read_bytes() for p in junk.iterdir()} == before
    assert re.findall(r"event=journal_recovered records=(\d+) restored=(\d+)", srv.log_text())[-1] == ("3", "3")
