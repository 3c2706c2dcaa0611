"""DKIM verification (dkim_verify = yes) through the real binary: messages signed by python3-dkim
with keys the test DNS server publishes under dkim.test (conftest.make_dkim_keys), sent with
smtplib; the Authentication-Results field (RFC 8601) of the delivered copy is read back."""
import email
import smtplib
import socket
import time

import dkim

from conftest import DKIM_KEYS, wait_for

TEXT = (b"From: Carol <carol@dkim.test>\r\nTo: alice@example.test\r\nSubject: Hi there\r\n"
        b"Date: Thu, 03 Dec 2026 12:00:00 +0000\r\nMessage-ID: <1@dkim.test>\r\n\r\nHello,\r\n\r\nsee you.\r\n")


def signed(selector, text=TEXT, canon=(b"relaxed", b"relaxed"), algorithm=b"rsa-sha256", domain=b"dkim.test",
           key=None, **options):
    """The DKIM-Signature field python3-dkim makes for text with the selector's key."""
    return dkim.sign(text, selector.encode(), domain, DKIM_KEYS[key or selector], canonicalize=canon,
                     signature_algorithm=algorithm, **options)


def deliver(srv, message, source=None):
    """Sends message to alice@example.test; returns the Authentication-Results fields of the
    copy delivered, unfolded, and the copy."""
    before = len(srv.maildir_files("alice@example.test"))
    with smtplib.SMTP("127.0.0.1", srv.port, source_address=(source, 0) if source else None, timeout=20) as c:
        c.sendmail("carol@dkim.test", ["alice@example.test"], message)
    files = wait_for(lambda: srv.maildir_files("alice@example.test")[before:] or None)
    copy = email.message_from_bytes(files[-1].read_bytes())
    return [" ".join(v.split()) for v in copy.get_all("Authentication-Results", [])], files[-1].read_bytes()


def b_prefix(field):
    return b"".join(field.split(b"b=")[-1].split())[:8].decode()


def test_valid_signatures_pass_and_are_reported_at_the_top(make_server):
    srv = make_server(dkim_verify="yes")
    for selector, canon, algorithm in (("rsa", (b"relaxed", b"relaxed"), b"rsa-sha256"),
                                       ("rsa", (b"simple", b"simple"), b"rsa-sha256"),
                                       ("ed", (b"relaxed", b"simple"), b"ed25519-sha256")):
        sig = signed(selector, canon=canon, algorithm=algorithm)
        results, raw = deliver(srv, sig + TEXT)
        assert results == [f"mx.example.test; dkim=pass header.d=dkim.test header.s={selector} "
                           f"header.b={b_prefix(sig)}"], (selector, canon, results)
        lines = raw.split(b"\n")
        assert lines[0].startswith(b"Return-Path:") and lines[1].startswith(b"Authentication-Results:"), raw[:300]
        assert raw.index(b"Authentication-Results:") < raw.index(b"Received:")
    both = signed("rsa") + signed("ed", algorithm=b"ed25519-sha256")
    results, _ = deliver(srv, both + TEXT)
    assert results[0].count("dkim=pass") == 2 and "header.s=rsa" in results[0] and "header.s=ed" in results[0]
    log = srv.log_text()
    assert "event=dkim_verify session=" in log and "domain=dkim.test selector=ed result=pass" in log


def test_changed_messages_bad_keys_and_bad_fields_get_their_results(make_server):
    srv = make_server(dkim_verify="yes")
    changed_body = TEXT.replace(b"see you", b"pay now")
    changed_subject = TEXT.replace(b"Hi there", b"Hi  there")  # relaxed forgives blanks, simple does not
    appended = TEXT + b"Appended by a list.\r\n"
    cases = [
        (signed("rsa") + changed_body, 'dkim=fail reason="body hash did not verify"'),
        (signed("rsa") + TEXT.replace(b"Hi there", b"Pay now"), 'dkim=fail reason="signature did not verify"'),
        (signed("rsa") + changed_subject, "dkim=pass"),
        (signed("rsa", canon=(b"simple", b"simple")) + changed_subject,
         'dkim=fail reason="signature did not verify"'),
        (signed("rsa", length=True) + appended, "dkim=pass"),  # l= covers what was signed
        (signed("nokey", key="rsa") + TEXT, 'dkim=permerror reason="no key at nokey._domainkey.dkim.test"'),
        (signed("tiny") + TEXT, 'dkim=permerror reason="RSA key shorter than 1024 bits (RFC 8301)"'),
        (signed("revoked", key="rsa") + TEXT, 'dkim=permerror reason="key revoked (empty p=)"'),
        (signed("testing") + TEXT, "dkim=pass"),
        (signed("strict", identity=b"news@sub.dkim.test") + TEXT,
         'dkim=permerror reason="key requires i= to be d= itself (t=s)"'),
        (signed("rsa", domain=b"servfail.test") + TEXT, 'dkim=temperror reason="key lookup failed"'),
        (signed("rsa", algorithm=b"rsa-sha1") + TEXT, 'dkim=permerror reason="rsa-sha1 is not accepted (RFC 8301)"'),
        (b"DKIM-Signature: v=1; a=rsa-sha256; d=dkim.test; s=rsa; h=subject; bh=AAAA; b=AAAA\r\n" + TEXT,
         'dkim=permerror reason="h= does not sign From"'),
        (b"DKIM-Signature: v=1; a=rsa-sha256; d=dkim.test; s=rsa; h=from; x=1;\r\n\tbh=AAAA; b=AAAA\r\n" + TEXT,
         'dkim=permerror reason="signature expired (x=)"'),
        (b"DKIM-Signature: v=1; a=rsa-sha256; d=dkim.test; d=x.test\r\n" + TEXT,
         'dkim=permerror reason="signature field is not a tag list"'),
    ]
    for message, expected in cases:
        results, _ = deliver(srv, message)
        assert len(results) == 1 and expected in results[0], (expected, results, message[:200])
    assert "selector=testing result=pass testing=yes" in srv.log_text()


def test_fields_claiming_this_server_are_removed_and_others_kept(make_server):
    srv = make_server(dkim_verify="yes")
    forged = (b"Authentication-Results: MX.example.test;\r\n\tdkim=pass header.d=bank.example\r\n"
              b"Authentication-Results: other.example; spf=pass smtp.mailfrom=carol@dkim.test\r\n"
              b"Authentication-Results: mx.example.test.evil; dkim=pass\r\n")
    results, raw = deliver(srv, forged + TEXT)
    assert results == ["mx.example.test; dkim=none", "other.example; spf=pass smtp.mailfrom=carol@dkim.test",
                       "mx.example.test.evil; dkim=pass"], results
    assert b"bank.example" not in raw and raw.endswith(b"Hello,\n\nsee you.\n")


def test_spf_result_joins_and_unsigned_mail_is_dkim_none(make_server):
    srv = make_server(dkim_verify="yes", spf_policy="header")
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as c:
        c.sendmail("carol@spf-pass.test", ["alice@example.test"], TEXT)
    copy = email.message_from_bytes(wait_for(lambda: srv.maildir_files("alice@example.test"))[0].read_bytes())
    assert " ".join(copy["Authentication-Results"].split()) == \
        "mx.example.test; dkim=none; spf=pass smtp.mailfrom=carol@spf-pass.test"
    assert copy["Received-SPF"].startswith("pass")


def test_off_by_default_and_not_for_relay_networks_clients(make_server):
    srv = make_server()
    results, _ = deliver(srv, signed("rsa") + TEXT)
    assert results == []
    srv = make_server(dkim_verify="yes", relay_networks="127.0.0.2/32")
    forged = b"Authentication-Results: mx.example.test; dkim=pass header.d=bank.example\r\n"
    results, raw = deliver(srv, forged + signed("rsa") + TEXT, source="127.0.0.2")
    assert results == [] and b"bank.example" not in raw  # not checked, but no forged result passes
    assert "event=dkim_verify" not in srv.log_text()


def test_a_silent_resolver_gives_temperror_after_dns_timeout(make_server, silent_resolver):
    srv = make_server(dkim_verify="yes", dns_resolver=silent_resolver, dns_timeout="1s")
    started = time.monotonic()
    results, _ = deliver(srv, signed("rsa") + TEXT)
    assert 0.8 < time.monotonic() - started < 5
    assert len(results) == 1 and results[0].startswith(
        'mx.example.test; dkim=temperror reason="no answer within dns_timeout (1s)" header.d=dkim.test header.s=rsa '
        'header.b='), results


def test_a_client_gone_while_keys_are_looked_up_leaves_no_message(make_server, silent_resolver):
    srv = make_server(dkim_verify="yes", dns_resolver=silent_resolver, dns_timeout="2s")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    assert s.recv(512).startswith(b"220")
    body = (signed("rsa") + TEXT).replace(b"\r\n.", b"\r\n..")
    s.sendall(b"HELO client.example\r\nMAIL FROM:<carol@dkim.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
    wait_for(lambda: s.recv(4096).count(b"354"), what="354")
    s.sendall(body + b".\r\n")
    time.sleep(0.3)
    s.close()  # before the 250: the message must not be kept
    time.sleep(2.5)
    assert srv.maildir_files("alice@example.test") == []
    c = srv.connect()
    c.expect("NOOP", 250)


def test_a_client_gone_while_dkim_reads_a_big_message_leaves_no_message(make_server):
    """DKIM's body hashes run on a disk thread (the event loop serves the other sessions meanwhile);
    a client that leaves while they run takes its message with it, and the session's memory waits
    for the disk thread (ASan and valgrind runs check that)."""
    srv = make_server(dkim_verify="yes", max_message_size="64M")
    text = TEXT + b"".join(b"line %07d of a long body, long enough to keep the hashing busy\r\n" % i
                           for i in range(200000))  # 13 MB
    sigs = signed("rsa", text=text, canon=(b"simple", b"simple")) + signed("rsa", text=text)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    assert s.recv(512).startswith(b"220")
    s.sendall(b"HELO client.example\r\nMAIL FROM:<carol@dkim.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
    wait_for(lambda: s.recv(4096).count(b"354"), what="354")
    s.sendall(sigs + text + b".\r\n")
    s.close()  # at once: the hashing has just begun
    wait_for(lambda: "event=msgauth_abandoned" in srv.log_text() or None, what="the abandoned check")
    assert "reason=client_gone" in srv.log_text()
    time.sleep(0.3)
    assert srv.maildir_files("alice@example.test") == []
    c = srv.connect()
    c.expect("NOOP", 250)
