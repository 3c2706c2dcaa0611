"""DKIM signing (dkim_keys, RFC 6376 / RFC 8463) through the real binary: the signatures Postern
adds are checked by an independent verifier, Debian's python3-dkim (dkimpy), given the public keys
exactly as `postern dkim-record` prints them for DNS. Relayed mail is verified as the receiving
server got it over SMTP, local mail as its Maildir file holds it."""
import os
import random
import re
import signal
import smtplib
import subprocess
import time

import dkim
import pytest

from conftest import BIN, Client, free_port, open_path_for_server, sighup_and_wait, wait_for
from test_relay import relay, send  # noqa: F401 (relay is a fixture)
from test_metrics import values
from test_tls_auth import PASSWORD, pki, submission, tls_server  # noqa: F401 (fixtures)

# Blank runs, a folded field, trailing blanks, a display name with '@' and '<' in quotes, lines
# starting with a dot and empty lines at the end: what relaxed canonicalization must get right.
TRICKY = (b'From: "Alice, <x@evil.test>" (the boss) <alice@example.test>\r\nTo: bob@two-mx.test\r\n'
          b"Subject:   folded\r\n \t subject   line  \r\nX-Not-Signed: 1\r\n\r\n"
          b"Hello   world  \r\n\t indented\r\n.a dot line\r\n..two dots\r\n \r\n\r\n\r\n")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("dkim")
    open_path_for_server(d)  # a reload reads them as the server's user
    for name, args in (("rsa.pem", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                       ("ed.pem", ["-algorithm", "ED25519"]),
                       ("short.pem", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512"])):
        subprocess.run(["openssl", "genpkey", *args, "-out", str(d / name)], check=True, capture_output=True)
        (d / name).chmod(0o644)
    return d


def key_table(tmp_path, keys, lines):
    table = tmp_path / "dkim_keys"
    table.write_text("".join(f"{domain} {selector} {keys / file}\n" for domain, selector, file in lines))
    return table


def published(srv):
    """name -> TXT record text, parsed from `postern dkim-record` (what the administrator publishes)."""
    out = subprocess.run([str(BIN), "-c", str(srv.conf_path), "dkim-record"], capture_output=True, text=True,
                         check=True).stdout
    return {m.group(1): "".join(re.findall(r'"([^"]*)"', m.group(2))).encode()
            for m in re.finditer(r"^(\S+)\. IN TXT \((.*?)\)$", out, re.S | re.M)}


def verifies(message, records):
    return dkim.verify(message, dnsfunc=lambda name, timeout=5: records.get(name.decode().rstrip(".")))


def signature_tags(message):
    field = re.search(rb"^DKIM-Signature:(.*?)\r?\n(?=\S)", message, re.S | re.M).group(1)
    return dict(t.strip().split("=", 1) for t in re.sub(r"\s+", "", field.decode()).split(";") if t)


def relay_signed(relay, keys, tmp_path, entries):
    """A server with the dkim_keys entries relays TRICKY to the peer at 127.0.0.2: (server, the
    message as the peer got it, the TXT records the server says to publish)."""
    mx = relay["peers"].start("127.0.0.2")
    srv = relay["start"](dkim_keys=key_table(tmp_path, keys, entries))
    send(srv, ["bob@two-mx.test"], body=TRICKY)
    wait_for(lambda: mx.messages, what="delivery to the peer")
    return srv, mx.messages[0][2], published(srv)


def test_relayed_mail_is_signed_and_verifies_at_the_receiver(relay, keys, tmp_path):  # noqa: F811
    srv, content, records = relay_signed(relay, keys, tmp_path,
                                         [("example.test", "sel1", "rsa.pem"), ("other.test", "ed1", "ed.pem")])
    assert set(records) == {"sel1._domainkey.example.test", "ed1._domainkey.other.test"}
    tags = signature_tags(content)
    assert (tags["a"], tags["d"], tags["s"], tags["c"]) == ("rsa-sha256", "example.test", "sel1", "relaxed/relaxed")
    assert tags["h"].split(":").count("from") == 2 and "x-not-signed" not in tags["h"]  # From oversigned
    assert verifies(content, records)
    assert content.endswith(TRICKY)  # signing changed nothing
    assert not verifies(content.replace(b"Hello", b"Jello"), records)  # the body is covered
    assert not verifies(content.replace(b"Subject:   folded", b"Subject:   faked"), records)
    assert not verifies(content.replace(b"To: bob", b"From: mallory@example.test\r\nTo: bob"), records)
    assert re.search(r"event=accepted .* dkim=example\.test/sel1", srv.log_text())


def test_a_domain_with_an_rsa_and_an_ed25519_key_gets_both_signatures(relay, keys, tmp_path):  # noqa: F811
    """RFC 8463 3: a domain may sign with both kinds at once, so receivers that know only RSA and
    those that prefer Ed25519 each find one; both verify on their own."""
    srv, content, records = relay_signed(relay, keys, tmp_path,
                                         [("example.test", "ed1", "ed.pem"), ("example.test", "rsa1", "rsa.pem")])
    assert set(records) == {"ed1._domainkey.example.test", "rsa1._domainkey.example.test"}
    assert content.count(b"DKIM-Signature:") == 2
    def verified(message, idx):
        try:
            return dkim.DKIM(message).verify(idx=idx, dnsfunc=lambda name, timeout=5: records.get(
                name.decode().rstrip(".")))
        except dkim.ValidationError:
            return False
    assert verified(content, 0) and verified(content, 1)
    assert re.findall(rb"a=(rsa-sha256|ed25519-sha256);", content) == [b"rsa-sha256", b"ed25519-sha256"]
    assert not verified(content.replace(b"Hello", b"Jello"), 0) and not verified(content.replace(b"Hello", b"Jello"), 1)
    assert re.search(r"event=accepted .* dkim=example\.test/rsa1\+ed1", srv.log_text())


def test_submitted_mail_is_signed_with_ed25519_by_the_parent_domains_key(tls_server, pki, keys,  # noqa: F811
                                                                          tmp_path):
    srv = tls_server(relay_networks="", dkim_keys=key_table(tmp_path, keys, [("example.test", "ed1", "ed.pem")]))
    c = submission(srv, pki)
    c.expect("MAIL FROM:<alice@example.test>", 250)
    c.expect("RCPT TO:<bob@example.test>", 250)
    c.expect("DATA", 354)
    c.send(b"From: Alice <alice@news.example.test>\r\nSubject: no Date, no Message-ID\r\n\r\nbody\r\n.\r\n")
    assert c.reply()[0] == 250
    c.expect("QUIT", 221)
    [f] = srv.maildir_files("bob@example.test")
    stored = f.read_bytes().replace(b"\n", b"\r\n")
    tags = signature_tags(stored)
    assert (tags["a"], tags["d"]) == ("ed25519-sha256", "example.test")
    assert "date" in tags["h"] and "message-id" in tags["h"]  # the fields Postern added are signed too
    records = published(srv)
    assert verifies(stored, records)
    assert not verifies(stored.replace(b"Message-ID: <", b"Message-ID: <x"), records)


def test_only_mail_sent_from_here_is_signed_and_a_reload_adds_keys(make_server, keys, tmp_path):
    table = key_table(tmp_path, keys, [("example.test", "sel1", "rsa.pem")])
    mport = free_port()
    srv = make_server(relay_networks="127.0.0.2/32", dkim_keys=table, metrics_listen=f"127.0.0.1:{mport}")

    def deliver(source, author):
        c = Client(srv.port, source=source)
        assert c.reply()[0] == 220
        c.expect("EHLO client.example", 250)
        c.expect("MAIL FROM:<someone@example.test>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("DATA", 354)
        c.send(f"From: {author}\r\nSubject: s\r\n\r\nbody\r\n.\r\n".encode())
        assert c.reply()[0] == 250
        c.expect("QUIT", 221)
        return srv.maildir_files("alice@example.test")[-1].read_bytes()

    assert b"DKIM-Signature" not in deliver("127.0.0.1", "x@example.test")  # MX traffic: never signed
    assert b"DKIM-Signature" not in deliver("127.0.0.2", "x@nokey.test")  # no key for the From domain
    assert 'event=dkim_unsigned session=' in srv.log_text() and 'detail="no key for the From domain"' in srv.log_text()
    assert b"d=example.test" in deliver("127.0.0.2", "x@example.test")
    key_table(tmp_path, keys, [("example.test", "sel1", "rsa.pem"), ("nokey.test", "s2", "ed.pem")])
    sighup_and_wait(srv, "reloaded")
    assert "dkim_keys=2" in srv.log_text()
    signed = deliver("127.0.0.2", "x@nokey.test").replace(b"\n", b"\r\n")
    assert signature_tags(signed)["d"] == "nokey.test" and verifies(signed, published(srv))
    got = values(mport)  # MX traffic is not counted: it is never signed
    assert (got['postern_dkim_messages_total{result="signed"}'],
            got['postern_dkim_messages_total{result="unsigned"}']) == (2, 1)


def test_a_big_message_is_signed_on_a_disk_thread_through_a_reload_and_a_client_gone(make_server, keys, tmp_path):
    """The signature of a 25 MB message is made on a disk thread; the keys table is reloaded (the
    old one freed) and the client leaves while it is made: the job keeps its own key, and the
    message, committed as any message whose client left during its commit, carries a signature
    that verifies. (Under ASan a job reading the freed table fails this test.) A busy machine may
    let the reload come late: then the round is tried again, three times at most."""
    table = key_table(tmp_path, keys, [("example.test", "sel1", "rsa.pem")])
    srv = make_server(relay_networks="127.0.0.2/32", dkim_keys=table, max_message_size="64M")
    records = published(srv)
    body = b"".join(b"line %07d of a long body, long enough to keep the hashing busy\r\n" % i for i in range(400000))
    for attempt in range(3):
        start = len(srv.log_text())
        c = Client(srv.port, source="127.0.0.2")
        assert c.reply()[0] == 220
        c.expect("EHLO client.example", 250)
        c.expect("MAIL FROM:<someone@example.test>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("DATA", 354)
        c.send(b"From: x@example.test\r\nSubject: big\r\n\r\n" + body + b".\r\n")
        deadline = time.monotonic() + 30
        while "event=dkim_signing" not in srv.log_text()[start:] and time.monotonic() < deadline:
            time.sleep(0.001)
        srv.proc.send_signal(signal.SIGHUP)  # at once: the signature is being made
        c.close()
        wait_for(lambda: "accepted_client_gone" in srv.log_text()[start:] or None, what="the message committed")
        stored = srv.maildir_files("alice@example.test")[-1].read_bytes().replace(b"\n", b"\r\n")
        assert signature_tags(stored)["d"] == "example.test" and verifies(stored, records)
        log = srv.log_text()[start:]
        if os.environ.get("POSTERN_VALGRIND"):  # valgrind runs one thread at a time: the job first
            return
        if log.index("event=dkim_signing") < log.index("event=reloaded") < log.index("event=dkim_signed"):
            return
    raise AssertionError("the reload never came while the signature was made: the test proved nothing")


def test_check_config_names_each_bad_line(tmp_path, keys):
    (tmp_path / "dkim_keys").write_text(
        f"example.test sel1 {keys / 'rsa.pem'}\n"
        "# a comment\n"
        f"bad_domain! sel {keys / 'rsa.pem'}\n"
        f"short.test sel {keys / 'short.pem'}\n"
        f"missing.test sel {tmp_path / 'nowhere.pem'}\n"
        f"sel.test bad/selector {keys / 'rsa.pem'}\n"
        "two.test fields\n"
        f"notakey.test sel {tmp_path / 'postern.conf'}\n"
        f"EXAMPLE.test sel2 {keys / 'rsa.pem'}\n"  # a second RSA key (RSA + Ed25519 would be a pair)
        f"long.test sel /{'x' * 5000}.pem\n")
    (tmp_path / "postern.conf").write_text(f"hostname = mx.example.test\ndkim_keys = {tmp_path / 'dkim_keys'}\n")
    r = subprocess.run([str(BIN), "-c", str(tmp_path / "postern.conf"), "check-config"], capture_output=True,
                       text=True)
    assert r.returncode == 1
    table = tmp_path / "dkim_keys"
    for line, words in ((3, "'bad_domain!' is not a domain"), (4, "an RSA key of 512 bits"),
                        (5, "cannot read key file"), (6, "selector 'bad/selector'"),
                        (7, "expected 'domain selector keyfile'"), (8, "holds no PEM private key"),
                        (10, "line longer than 4094 octets")):
        assert f"{table}:{line}: dkim_keys: " in r.stderr and words in r.stderr, (line, r.stderr)
    assert "example.test is listed twice with an RSA key" in r.stderr
    assert "8 configuration errors" in r.stderr, r.stderr
    (tmp_path / "dkim_keys").write_text(f"example.test sel1 {keys / 'rsa.pem'}\n")  # mode 644 (the test's keys)
    r = subprocess.run([str(BIN), "-c", str(tmp_path / "postern.conf"), "check-config"], capture_output=True,
                       text=True)
    assert r.returncode == 0 and "rsa.pem can be read by every user: whoever reads it can sign mail as " \
        "example.test" in r.stderr, r.stderr


def random_message(rng, author):
    """A message with what relaxed canonicalization must handle, in random measure: blank runs,
    folds, trailing blanks, names in any case, repeated signed fields, blank-only and empty lines,
    dot lines, 8-bit octets, empty lines at the end, sometimes no body."""
    def blanks():
        return rng.choice(["", " ", "  ", "\t", " \t "])

    def value(words):
        parts = [rng.choice(["alpha", "b\u00e9ta", "gamma", "x=1;", "(c)"]) for _ in range(words)]
        out = blanks() or " "
        for p in parts:
            out += p + (rng.choice(["\r\n" + (blanks() or " "), blanks() or " "]) if rng.random() < 0.3 else " ")
        return out + blanks()

    fields = [f"{rng.choice(['From', 'FROM', 'from'])}:{blanks() or ' '}{author}{blanks()}",
              f"To: {'bob@example.test'}", f"Subject:{value(rng.randint(0, 6))}"]
    for _ in range(rng.randint(0, 4)):
        fields.append(f"{rng.choice(['Cc', 'cc', 'X-Extra', 'Content-Type', 'References'])}"
                      f":{value(rng.randint(1, 4))}")
    rng.shuffle(fields[1:])
    lines = []
    for _ in range(rng.randint(0, 8)):
        lines.append(rng.choice(["", blanks(), ".dot" + blanks(), blanks() + "text" + blanks() + "more" + blanks(),
                                 "caf\u00e9" + blanks()]))
    body = "".join(line + "\r\n" for line in lines) + "\r\n" * rng.randint(0, 3)
    return ("\r\n".join(fields) + "\r\n\r\n" + body).encode()


def test_random_messages_all_verify_and_a_stray_continuation_line_is_safe(make_server, keys, tmp_path):
    rng = random.Random(6376)
    table = key_table(tmp_path, keys, [("example.test", "sel1", "rsa.pem"), ("other.test", "ed1", "ed.pem")])
    srv = make_server(relay_networks="127.0.0.0/8", dkim_keys=table)
    sent = [random_message(rng, rng.choice(["a@example.test", "Name <b@other.test>", "c@sub.example.test"]))
            for _ in range(40)]
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as c:
        for message in sent:
            c.sendmail("a@example.test", ["alice@example.test"], message)
        # a header section opening with a blank-only line (continuing nothing); read out of bounds once
        c.sendmail("a@example.test", ["bob@example.test"], b"  \r\nFrom: a@example.test\r\n\r\nx\r\n")
    records = published(srv)
    stored = [f.read_bytes().replace(b"\n", b"\r\n") for f in srv.maildir_files("alice@example.test")]
    assert len(stored) == len(sent)
    bad = [m for m in stored if not verifies(m, records)]
    assert not bad, bad[0].decode(errors="replace")
    assert len(srv.maildir_files("bob@example.test")) == 1
