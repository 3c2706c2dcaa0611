"""Aliases (the aliases table) through the real binary: one RCPT, one 250, a copy for every target
- local mailboxes, remote addresses (relayed even for a client that may not relay), aliases within
aliases - with the RCPT's NOTIFY and ORCPT; bounces to an alias reach its targets; mistakes in the
table are errors at its line; a reload applies a changed table."""
import hashlib
import hmac
import re
import subprocess
import time

from conftest import BIN, free_port, sighup_and_wait, wait_for
from test_metrics import values
from test_relay import dsn_for, relay, report_fields, scripted, send  # noqa: F401 (relay is a fixture)


def test_an_alias_reaches_every_target_and_a_bounce_to_an_alias_reaches_its_members(relay, tmp_path):  # noqa: F811
    def reply(line, n):
        if line.startswith("RCPT") and "gone" in line:
            return b"550 5.1.1 <gone@scripted.test>: no such user here\r\n"
        return b"354 go\r\n" if line == "DATA" else b"250 2.0.0 ok\r\n"
    peer = scripted(relay, reply=reply)
    table = tmp_path / "aliases"
    table.write_text("# sales and support\n"
                     "info@example.test: alice@example.test, bob@example.test,friend@scripted.test\n"
                     "info@example.test gone@scripted.test\n"  # a second line adds to the first
                     "team@example.test alice@example.test bob@example.test\n")
    srv = relay["start"](relay_networks="", aliases=table)  # MX traffic: no relay rights of its own
    send(srv, ["info@example.test", "alice@example.test"], sender="team@example.test")
    wait_for(lambda: peer.bodies, what="the remote copy")
    # the peer offers no DSN: no ORCPT on the wire; the copies keep it for their reports
    assert [l for l in peer.lines if l.startswith("RCPT")] == [
        "RCPT TO:<friend@scripted.test>", "RCPT TO:<gone@scripted.test>"]
    # the report for gone@ goes to the sender, an alias: to alice and bob, naming the address used
    wait_for(lambda: len(srv.maildir_files("bob@example.test")) == 2, what="the report to bob")
    msg = dsn_for(srv, "alice@example.test")
    per_msg, rcpts = report_fields(msg)
    assert len(rcpts) == 1 and rcpts[0]["Final-Recipient"] == "rfc822; gone@scripted.test"
    assert rcpts[0]["Original-Recipient"] == "rfc822;info@example.test" and rcpts[0]["Action"] == "failed"
    assert len(srv.maildir_files("alice@example.test")) == 2  # one message (alias and RCPT alike), one report
    log = srv.log_text()
    assert re.search(r"event=alias_expanded session=\w+ rcpt=<info@example\.test> to=<alice@example\.test>,"
                     r"<bob@example\.test>,<friend@scripted\.test>,<gone@scripted\.test>\n", log)
    assert "rcpts=<alice@example.test>,<bob@example.test>,<friend@scripted.test>,<gone@scripted.test> " in log


def test_self_alias_extension_catch_all_notify_and_reload(make_server, tmp_path):
    table = tmp_path / "aliases"
    table.write_text("alice@example.test: alice@example.test, bob@example.test\n"  # keeps her copy
                     "one@example.test bob@example.test\n"
                     "@catchall.test alice@example.test\n")  # before recipients' @catchall.test
    mport = free_port()
    srv = make_server(aliases=table, metrics_listen=f"127.0.0.1:{mport}")

    def deliver(rcpt):
        c = srv.connect()
        c.expect("EHLO client.example", 250)
        c.expect("MAIL FROM:<postmaster@example.test>", 250)
        c.expect(f"RCPT TO:{rcpt}", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: s\r\n\r\nbody\r\n.\r\n")
        assert c.reply()[0] == 250
        c.expect("QUIT", 221)

    def count(address):
        return len(srv.maildir_files(address))

    deliver("<Alice+tag@example.test> NOTIFY=SUCCESS")  # two copies: one "expanded" report (RFC 3461)
    assert (count("alice@example.test"), count("bob@example.test")) == (1, 1)
    per_msg, rcpts = report_fields(dsn_for(srv, "postmaster@example.test"))
    assert [(r["Action"], r["Final-Recipient"], r["Status"]) for r in rcpts] == [
        ("expanded", "rfc822; Alice+tag@example.test", "2.0.0")]
    deliver("<one@example.test> NOTIFY=SUCCESS")  # one target: the report is asked for as for the address
    wait_for(lambda: count("postmaster@example.test") == 2, what="the second report")
    per_msg, rcpts = report_fields(dsn_for(srv, "postmaster@example.test"))
    assert rcpts[0]["Action"] == "delivered" and rcpts[0]["Final-Recipient"] == "rfc822; bob@example.test"
    assert rcpts[0]["Original-Recipient"] == "rfc822;one@example.test"
    deliver("<anyone@catchall.test>")  # to alice, an alias herself: bob too
    assert (count("alice@example.test"), count("bob@example.test")) == (2, 3)
    table.write_text("one@example.test alice@example.test\n")
    sighup_and_wait(srv, "reloaded")
    deliver("<one@example.test>")  # alice is no alias now
    assert (count("alice@example.test"), count("bob@example.test")) == (3, 3)
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<postmaster@example.test>", 250)
    c.expect("RCPT TO:<anyone@catchall.test>", 250)  # recipients' @catchall.test again: its own mailbox
    c.expect("QUIT", 221)
    time.sleep(0.3)
    assert count("postmaster@example.test") == 2  # the two reports
    assert values(mport)["postern_alias_expansions_total"] == 4
    out = subprocess.run([str(BIN), "-c", str(srv.conf_path), "route", "one@example.test"], capture_output=True,
                         text=True).stdout
    assert "alias (from any client): mail goes to\n  -> alice@example.test: delivered to" in out, out


def test_check_config_names_each_alias_mistake(tmp_path):
    (tmp_path / "recipients").write_text("alice@example.test\n")
    (tmp_path / "moved").write_text("carol@example.test carol@new.example\n")
    (tmp_path / "aliases").write_text(
        "a@example.test b@example.test\n"
        "b@example.test a@example.test\n"
        "c@example.test alice@example.test, nobody@example.test\n"
        "d@elsewhere.test alice@example.test\n"
        "e@example.test not-an-address\n"
        "f@example.test\n"
        "g@example.test carol@example.test\n"
        "h@example.test x@nullmx.test\n"
        "i@example.test " + "x" * 5000 + "@example.test\n"
        "ok@example.test alice@example.test, someone@far.test\n")
    (tmp_path / "postern.conf").write_text(
        f"hostname = mx.example.test\nlocal_domains = example.test\nnull_mx_domains = nullmx.test\n"
        f"recipients = {tmp_path / 'recipients'}\nmoved = {tmp_path / 'moved'}\naliases = {tmp_path / 'aliases'}\n")
    r = subprocess.run([str(BIN), "-c", str(tmp_path / "postern.conf"), "check-config"], capture_output=True,
                       text=True)
    assert r.returncode == 1
    table = tmp_path / "aliases"
    for line, words in ((1, "a@example.test: aliases within aliases more than 8 deep (a loop?)"),
                        (2, "b@example.test: aliases within aliases more than 8 deep"),
                        (3, "target nobody@example.test would be refused: 550 5.1.1 (unknown_mailbox)"),
                        (4, "domain is not in local_domains"),
                        (5, "target 'not-an-address' is not an address"),
                        (6, "expected 'address target[, target...]'"),
                        (7, "target carol@example.test would be refused: 551 5.1.6 (moved)"),
                        (8, "target x@nullmx.test would be refused: 556 5.1.10 (null_mx_domain)"),
                        (9, "line longer than 4094 octets")):
        assert any(l.startswith(f"postern: {table}:{line}: aliases: ") and words in l for l in r.stderr.splitlines()), \
            (line, r.stderr)
    assert "9 configuration errors" in r.stderr and ":10:" not in r.stderr, r.stderr


def srs_address(secret, days_ago, local, domain, srs_domain="example.test"):
    """An SRS0 address as the README documents it: HMAC-SHA256 under the secret over
    "tt=domain=local" lower-cased, its first 25 bits in base32; tt the day number mod 1024."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    day = (int(time.time()) // 86400 - days_ago) % 1024
    tt = alphabet[day >> 5] + alphabet[day & 31]
    digest = hmac.new(secret.encode(), f"{tt}={domain}={local}".lower().encode(), hashlib.sha256).digest()
    bits = int.from_bytes(digest[:4], "big")
    code = "".join(alphabet[(bits >> (27 - 5 * i)) & 31] for i in range(5))
    return f"SRS0={code}={tt}={domain}={local}@{srs_domain}"


def srs_forwarder(relay, tmp_path, secrets_text):
    """A server that forwards fwd@example.test to friend@scripted.test (a scripted peer that takes
    everything) with srs_domain example.test and these SRS secrets: (peer, server)."""
    peer = scripted(relay, reply=lambda line, n: b"354 go\r\n" if line == "DATA" else b"250 2.0.0 ok\r\n")
    table = tmp_path / "aliases"
    table.write_text("fwd@example.test friend@scripted.test\n")
    secrets = tmp_path / "srs-secrets"
    secrets.write_text(secrets_text)
    secrets.chmod(0o600)
    return peer, relay["start"](relay_networks="", aliases=table, srs_domain="example.test", srs_secret=secrets)


def bounce_to(srv, peer, good, bad):
    """A bounce (null sender) to SRS addresses: each of good taken (250), each of bad refused (550
    5.1.1); returns the RCPT lines the peer got for it, once the two forwarded copies before it and
    it are there."""
    c = srv.connect()
    c.expect("EHLO bouncer.example", 250)
    c.expect("MAIL FROM:<>", 250)
    for addr in good:
        c.expect(f"RCPT TO:<{addr}>", 250)
    for addr in bad:
        c.expect(f"RCPT TO:<{addr}>", 550, "5.1.1 Bounce address not valid or expired")
    c.expect("DATA", 354)
    c.send(b"Subject: Undelivered Mail\r\n\r\nyour message could not be delivered\r\n.\r\n")
    assert c.reply()[0] == 250
    wait_for(lambda: len(peer.bodies) == 3, what="the bounce passed back")
    return [l for l in peer.lines if l.startswith("RCPT")][2:]


def test_forwarded_mail_leaves_with_an_srs_sender_and_its_bounce_comes_back(relay, tmp_path):  # noqa: F811
    """srs_domain: an alias's remote copy of mail from another domain goes out from an SRS0 address
    of srs_domain (made with the first secret); a bounce to it - any case, signed with any listed
    secret, younger than srs_max_age - is relayed back to the sender, from a client without relay
    rights; a changed or old one gets 550 5.1.1. A sender of a local domain goes out as it is."""
    peer, srv = srs_forwarder(relay, tmp_path, "# the first line signs\nnew-secret-0123456789\nold-secret-0123456789\n")
    send(srv, ["fwd@example.test"], sender="Carol@scripted.test")
    send(srv, ["fwd@example.test"], sender="alice@example.test")
    wait_for(lambda: len(peer.bodies) == 2, what="both forwarded copies")
    senders = [l for l in peer.lines if l.startswith("MAIL FROM")]
    srs = srs_address("new-secret-0123456789", 0, "Carol", "scripted.test")
    assert sorted(senders) == sorted([f"MAIL FROM:<{srs}>", "MAIL FROM:<alice@example.test>"])
    assert f"sender=<Carol@scripted.test> as=<{srs}>" in srv.log_text()
    rcpts = bounce_to(srv, peer, [srs, srs.lower(),  # a bouncer that lower-cased it: the hash still holds
                                  srs_address("old-secret-0123456789", 20, "dave", "scripted.test")],
                      [srs_address("old-secret-0123456789", 22, "dave", "scripted.test"),  # past srs_max_age
                       srs_address("not-a-secret-here-0", 0, "dave", "scripted.test"),
                       srs.replace("=Carol@", "=Carl@")])
    assert sorted(rcpts) == ["RCPT TO:<Carol@scripted.test>", "RCPT TO:<carol@scripted.test>",
                             "RCPT TO:<dave@scripted.test>"]
    assert [l for l in peer.lines if l.startswith("MAIL FROM")][2] == "MAIL FROM:<>"


def srs_hash(secret, data):
    """The SRS hash the README documents: HMAC-SHA256 under the secret over data in lower case,
    its first 25 bits in base32."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    bits = int.from_bytes(hmac.new(secret.encode(), data.lower().encode(), hashlib.sha256).digest()[:4], "big")
    return "".join(alphabet[(bits >> (27 - 5 * i)) & 31] for i in range(5))


def test_srs_sender_of_another_forwarder_goes_out_as_srs1(relay, tmp_path):  # noqa: F811
    """Mail already forwarded once (its sender an SRS0 address of another forwarder) leaves as
    SRS1=HHHHH=forwarder==REST@srs_domain, the hash over "srs1=forwarder==REST"; an SRS1 sender
    keeps its first forwarder. A bounce to such an address goes back to the first forwarder's SRS0
    address (which only that forwarder can read); a changed one gets 550 5.1.1."""
    peer, srv = srs_forwarder(relay, tmp_path, "the-secret-0123456789\n")
    first_hop = "SRS0=abcde=RA=orig.example=bob@Scripted.test"
    send(srv, ["fwd@example.test"], sender=first_hop)
    send(srv, ["fwd@example.test"], sender="SRS1=ZZZZZ=scripted.test==abcde=RA=orig.example=bob@hop2.example")
    wait_for(lambda: len(peer.bodies) == 2, what="both forwarded copies")
    rest = "=abcde=RA=orig.example=bob"
    srs1 = f"SRS1={srs_hash('the-secret-0123456789', 'srs1=scripted.test=' + rest)}=scripted.test={rest}@example.test"
    assert [l for l in peer.lines if l.startswith("MAIL FROM")] == [f"MAIL FROM:<{srs1}>"] * 2
    assert f"sender=<{first_hop}> as=<{srs1}>" in srv.log_text()
    rcpts = bounce_to(srv, peer, [srs1], [srs1.replace("=scripted.test=", "=hop3.example="),
                                          srs1.replace("=bob@", "=bobby@")])
    assert rcpts == ["RCPT TO:<SRS0=abcde=RA=orig.example=bob@scripted.test>"]


def test_srs_mistakes_at_check_config_and_route(tmp_path):
    """A short secret is an error at its line that does not show it; srs_domain without a secret,
    or an address literal, is an error; postern route tells where a bounce address leads."""
    secrets = tmp_path / "srs-secrets"
    secrets.write_text("Short-Secret\n")
    conf = tmp_path / "postern.conf"

    def check(srs_domain, *args):
        conf.write_text(f"hostname = mx.example.test\nlocal_domains = example.test\n"
                        f"srs_domain = {srs_domain}\nsrs_secret = {secrets}\n")
        return subprocess.run([str(BIN), "-c", str(conf), *(args or ["check-config"])], capture_output=True,
                              text=True)
    r = check("example.test")
    assert r.returncode == 1 and f"{secrets}:1: srs_secret: a secret needs at least 16 characters" in r.stderr
    assert "Short-Secret" not in r.stderr and "1 configuration error" in r.stderr
    secrets.write_text("# none yet\n")
    r = check("example.test")
    assert f"{conf}:3: srs_domain: needs a secret" in r.stderr and r.returncode == 1
    secrets.write_text("a-secret-long-enough\n")
    r = check("[192.0.2.1]")
    assert f"{conf}:3: srs_domain: '[192.0.2.1]' is not a domain name" in r.stderr and r.returncode == 1
    good = srs_address("a-secret-long-enough", 3, "bob", "two-mx.test")
    r = check("example.test", "route", good, good.replace("=bob@", "=bobby@"))
    assert "passed back to bob@two-mx.test" in r.stdout and "sent to the mail exchangers of two-mx.test" in r.stdout
    assert "refused at RCPT: 550 5.1.1 Bounce address not valid or expired (srs_invalid)" in r.stdout
