"""Recipient and sender policy: the replies this project exists for, in their documented order."""
import time

import pytest


def session(srv, sender="<s@sender.example>", smtputf8=False):
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect(f"MAIL FROM:{sender}" + (" SMTPUTF8" if smtputf8 else ""), 250)
    return c


@pytest.mark.parametrize("rcpt", [
    "<bad@@example.test>", "<.alice@example.test>", "<alice@example..test>", "<alice@-x.test>",
    "<alice@example.test", "alice@example.test", "<>", "<al ice@example.test>", "<alice@[300.1.1.1]>",
    "<alice@`id`.test>", "<$(reboot)@>",
])
def test_invalid_recipient_553_513(server, rcpt):
    c = session(server)
    c.expect(f"RCPT TO:{rcpt}", 553, "5.1.3")


@pytest.mark.parametrize("sender", ["<bad@@x.example>", "<a@b.example", "<a b@c.example>", "<@x>", "<a@>"])
def test_invalid_sender_553_517(server, sender):
    c = server.connect()
    c.expect("EHLO client.example", 250)
    c.expect(f"MAIL FROM:{sender}", 553, "5.1.7")


def test_null_sender_is_valid(server):
    c = session(server, "<>")
    c.expect("RCPT TO:<alice@example.test>", 250)


def test_utf8_needs_smtputf8(server):
    c = server.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<j\u00f6rg@sender.example>", 553, "5.6.7")
    c.expect("MAIL FROM:<s@sender.example>", 250)
    c.expect("RCPT TO:<j\u00f6rg@example.test>", 553, "5.6.7")


def test_utf8_with_smtputf8_is_delivered(server):
    c = session(server, "<j\u00f6rg@sender.example>", smtputf8=True)
    c.expect("RCPT TO:<j\u00f6rg@example.test>", 250)
    c.expect("DATA", 354)
    c.expect("Subject: utf8\r\n\r\nhi\r\n.", 250)
    files = server.maildir_files("j\u00f6rg@example.test")
    assert len(files) == 1
    text = files[0].read_text(encoding="utf-8")
    assert "with UTF8SMTP" in text and "Return-Path: <j\u00f6rg@sender.example>" in text


def test_null_mx_domain_556(server):
    c = session(server)
    c.expect("RCPT TO:<anyone@nullmx.test>", 556, "5.1.10")
    c.expect("RCPT TO:<anyone@NULLMX.test>", 556, "5.1.10")


def test_moved_user_551_names_new_address(server):
    c = session(server)
    lines = c.expect("RCPT TO:<carol@example.test>", 551, "5.1.6")
    assert lines[-1] == "5.1.6 User not local; please try <carol@new.example>"
    c.expect("RCPT TO:<Carol+news@Example.Test>", 551, "<carol@new.example>")


def test_relay_denied_551_571(server):
    c = session(server)
    c.expect("RCPT TO:<someone@elsewhere.example>", 551, "5.7.1")


def test_relay_allowed_from_relay_networks_goes_to_spool(make_server):
    srv = make_server(relay_networks="127.0.0.0/8")
    c = session(srv)
    c.expect("RCPT TO:<someone@servfail.test>", 250, "2.1.5")  # its DNS fails: it stays queued
    c.expect("RCPT TO:<alice@example.test>", 250)
    c.expect("DATA", 354)
    lines = c.expect("Subject: relay\r\n\r\nhi\r\n.", 250)
    qid = lines[-1].split()[-1]
    qfile = srv.spool_dir / "queue" / qid
    text = qfile.read_text()
    assert text.startswith("POSTERN-QUEUE 2\n")
    assert "rcpt 0 - someone@servfail.test\n" in text and "alice@example.test" not in text.split("message")[0]
    assert "\nReturn-Path:" not in text and "\nReceived: from " in text  # final delivery adds Return-Path
    assert text.rstrip("\n").split("\n")[-1].startswith("END ")
    assert len(srv.maildir_files("alice@example.test")) == 1


def test_unknown_mailbox_550(server):
    c = session(server)
    c.expect("RCPT TO:<nobody@example.test>", 550, "5.1.1")


def test_extension_and_case(server):
    c = session(server)
    c.expect("RCPT TO:<alice+tag@example.test>", 250)
    c.expect("RCPT TO:<ALICE@EXAMPLE.TEST>", 250)  # same mailbox: delivered once
    c.expect("RCPT TO:<nobody+alice@example.test>", 550, "5.1.1")
    c.expect("DATA", 354)
    c.expect("Subject: ext\r\n\r\nhi\r\n.", 250)
    assert len(server.maildir_files("alice@example.test")) == 1


def test_catchall_domain(server):
    c = session(server)
    c.expect("RCPT TO:<whoever@catchall.test>", 250)
    c.expect("RCPT TO:<other+x@CatchAll.test>", 250)
    c.expect("DATA", 354)
    c.expect("hi\r\n.", 250)
    assert len(server.maildir_files("whoever@catchall.test")) == 1
    assert len(server.maildir_files("other@catchall.test")) == 1


def test_postmaster_always_accepted(server):
    c = session(server)
    c.expect("RCPT TO:<Postmaster>", 250)
    c.expect("RCPT TO:<postmaster@example.test>", 250)
    c.expect("DATA", 354)
    c.expect("hi\r\n.", 250)
    assert len(server.maildir_files("postmaster@example.test")) == 1


def test_postmaster_at_this_hosts_address_literal(make_server):
    """RFC 5321 4.5.1: postmaster at this host is always accepted, also written as the address
    literal of the address the client connected to; any other mailbox there is 550 5.1.1 (not
    relayed back to this host, even for a client that may relay). Another address is not this host."""
    srv = make_server(relay_networks="127.0.0.0/8")
    c = session(srv)
    c.expect("RCPT TO:<postmaster@[127.0.0.1]>", 250)
    c.expect("RCPT TO:<PostMaster@[127.000.0.1]>", 250)  # the same mailbox: one copy
    c.expect("RCPT TO:<alice@[127.0.0.1]>", 550, "5.1.1")
    c.expect("DATA", 354)
    c.expect("hi\r\n.", 250)
    assert len(srv.maildir_files("postmaster@example.test")) == 1
    assert "unknown_mailbox_at_this_address" in srv.log_text()
    c = session(make_server())
    c.expect("RCPT TO:<postmaster@[127.0.0.2]>", 551, "5.7.1")


def test_max_recipients_452(make_server):
    srv = make_server(max_recipients=2)
    c = session(srv)
    c.expect("RCPT TO:<alice@example.test>", 250)
    c.expect("RCPT TO:<bob@example.test>", 250)
    c.expect("RCPT TO:<postmaster@example.test>", 452, "4.5.3")


def test_size_param_over_limit_552(make_server):
    srv = make_server(max_message_size=10000)
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<s@sender.example> SIZE=10001", 552, "5.3.4")
    c.expect("MAIL FROM:<s@sender.example> SIZE=99999999999999999999", 552, "5.3.4")
    c.expect("MAIL FROM:<s@sender.example> SIZE=18446744073709551617", 552, "5.3.4")  # over 2^64
    c.expect("MAIL FROM:<s@sender.example> SIZE=000000000000000000000", 501, "5.5.4")  # 21 digits
    c.expect("MAIL FROM:<s@sender.example> SIZE=00000000000000010000", 250)  # RFC 1870: 1*20DIGIT
    c.expect("RSET", 250)
    c.expect("MAIL FROM:<s@sender.example> SIZE=10000", 250)


def test_order_null_mx_before_moved_before_relay(make_server, tmp_path):
    srv = make_server()
    # a moved entry in a null-MX domain still gets 556: null MX is checked first
    c = session(srv)
    c.expect("RCPT TO:<carol@nullmx.test>", 556)
    # syntax is checked before anything else
    c.expect("RCPT TO:<carol@@nullmx.test>", 553, "5.1.3")


@pytest.mark.parametrize("local,dirname", [
    ('"../../etc"', "%2E.%2F..%2Fetc"),
    ('"a/b"', "a%2Fb"),
    ('".."', "%2E."),
    ("%2e%2e", "%252e%252e"),
])
def test_hostile_local_parts_stay_inside_mail_dir(server, local, dirname):
    c = session(server)
    c.expect(f"RCPT TO:<{local}@catchall.test>", 250)
    c.expect("DATA", 354)
    c.expect("x\r\n.", 250)
    [f] = server.all_delivered()
    assert f.parent.parent == server.mail_dir / "catchall.test" / dirname
    assert server.mail_dir.resolve() in f.resolve().parents


def test_internationalized_local_domain_in_every_spelling(make_server, tmp_path):
    # a client without SMTPUTF8 must write the A-label (RFC 6531 3.2); one with it may write
    # U-labels in any case: all are the one configured domain and reach the same mailbox
    table = tmp_path / "idn-recipients"
    table.write_text("bob@b\u00fccher.test\n@xn--caf-dma.test\n", encoding="utf-8")
    srv = make_server(local_domains="example.test, B\u00dcCHER.test, xn--caf-dma.test", recipients=table)
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<s@sender.example>", 250)
    c.expect("RCPT TO:<bob@xn--bcher-kva.test>", 250)
    c.expect("RCPT TO:<anyone@xn--caf-dma.test>", 250)  # catch-all written as an A-label
    c.expect("RCPT TO:<eve@xn--bcher-kva.test>", 550, "5.1.1")
    c.expect("DATA", 354)
    c.expect("Subject: idn\r\n\r\nx\r\n.", 250)
    c.expect("MAIL FROM:<s@sender.example> SMTPUTF8", 250)
    c.expect("RCPT TO:<bob@B\u00dcCHER.test>", 250)
    c.expect("RCPT TO:<zoe@caf\u00e9.test>", 250)
    c.expect("DATA", 354)
    c.expect("Subject: idn again\r\n\r\nx\r\n.", 250)
    assert len(list((srv.mail_dir / "b\u00fccher.test" / "bob" / "new").iterdir())) == 2
    assert len(list((srv.mail_dir / "caf\u00e9.test").iterdir())) == 2  # anyone, zoe


def test_directory_harvest_is_cut_off(make_server):
    """A session guessing addresses (mostly unknown) gets 421 4.7.0 after max_refused_recipients
    refused ones; the refusal itself is answered first, and nothing after the 421 is read."""
    srv = make_server(max_refused_recipients=5, log_level="info")
    c = srv.connect()
    c.expect("EHLO harvester.example", 250)
    c.expect("MAIL FROM:<h@harvester.example>", 250)
    c.expect("RCPT TO:<alice@example.test>", 250)  # one good guess does not save the rest
    for i in range(4):
        c.expect(f"RCPT TO:<guess{i}@example.test>", 550)
    c.send("RCPT TO:<guess4@example.test>\r\nRCPT TO:<bob@example.test>\r\n")
    assert c.reply()[0] == 550
    code, lines = c.reply()
    assert code == 421 and lines[0].startswith("4.7.0 Too many refused recipients")
    assert c.closed()
    log = srv.log_text()
    assert "event=too_many_refused_recipients session=" in log and "refused=5 accepted=1" in log
    assert srv.all_delivered() == []


def test_stale_addresses_among_good_ones_are_not_a_harvest(make_server):
    """A mailing list's message: refused recipients beyond the limit but fewer than the accepted
    ones go on; and each accepted message starts the count again."""
    srv = make_server(max_refused_recipients=5)
    c = srv.connect()
    c.expect("EHLO lists.example", 250)
    c.expect("MAIL FROM:<list@lists.example>", 250)
    for i in range(8):
        c.expect(f"RCPT TO:<member{i}@catchall.test>", 250)
        c.expect(f"RCPT TO:<stale{i}@example.test>", 550)
    c.expect("DATA", 354)
    c.expect("Subject: list\r\n\r\nhi\r\n.", 250)
    for _ in range(2):  # 4 refused, then the message: the next one starts from 0
        c.expect("MAIL FROM:<list@lists.example>", 250)
        for i in range(4):
            c.expect(f"RCPT TO:<gone{i}@example.test>", 550)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("DATA", 354)
        c.expect("Subject: list\r\n\r\nhi\r\n.", 250)
    c.expect("QUIT", 221)
    assert len(srv.all_delivered()) == 8 + 2


def test_harvest_limit_zero_is_off(make_server):
    srv = make_server(max_refused_recipients=0)
    c = srv.connect()
    c.expect("EHLO harvester.example", 250)
    c.expect("MAIL FROM:<h@harvester.example>", 250)
    for i in range(60):
        c.expect(f"RCPT TO:<guess{i}@example.test>", 550)
    c.expect("QUIT", 221)


def test_dns_outage_pauses_the_null_mx_checks(make_server, silent_resolver):
    """A resolver that never answers: the first 3 MAILs each wait dns_timeout (1s) for the null-MX
    check; then the checks are skipped for dns_outage_pause - MAIL and a relayed RCPT answer at
    once, and the log says why."""
    srv = make_server(dns_resolver=silent_resolver, dns_timeout="1s", relay_networks="127.0.0.0/8")
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    waits = []
    for i in range(3):
        start = time.monotonic()
        c.expect(f"MAIL FROM:<s@silent{i}.example>", 250)
        waits.append(time.monotonic() - start)
        c.expect("RSET", 250)
    start = time.monotonic()
    c.expect("MAIL FROM:<s@silent9.example>", 250)
    c.expect("RCPT TO:<r@silent-rcpt.example>", 250)
    waits.append(time.monotonic() - start)
    assert all(w > 0.9 for w in waits[:3]) and waits[3] < 0.5, waits
    assert "event=dns_checks_paused seconds=60" in srv.log_text()
