"""Mailbox quotas (mailbox_quota, mailbox_quotas): the Maildir++ maildirsize file kept as Dovecot and
Courier keep it, 452 4.2.2 at RCPT for a full mailbox (or one the declared SIZE would overfill),
552 5.2.2 for a message bigger than the whole quota, the same at the end of the data when the text
overfills every mailbox it is for, room made by an IMAP server's negative lines, and a reload."""
import imaplib
import os
import pwd
import smtplib
import subprocess
import time

import pytest
from conftest import BIN, check_config, sighup_and_wait, wait_for
from test_lmtp import dovecot_running


def maildir(srv, address):
    local, domain = address.split("@")
    return srv.mail_dir / domain / local


def usage(srv, address):
    """(quota line, octets, messages) as the mailbox's maildirsize says."""
    lines = (maildir(srv, address) / "maildirsize").read_text().splitlines()
    pairs = [[int(x) for x in line.split()] for line in lines[1:]]
    return lines[0], sum(p[0] for p in pairs), sum(p[1] for p in pairs)


def stored(srv, address):
    """(octets, messages) the mailbox's new/ holds."""
    files = srv.maildir_files(address)
    return sum(f.stat().st_size for f in files), len(files)


def send(srv, rcpts, body_octets, size=None):
    """One transaction: the RCPT replies, then the end-of-data reply (None when no RCPT was taken)."""
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<s@sender.example>" + (f" SIZE={size}" if size else ""), 250)
    replies = [c.cmd(f"RCPT TO:<{r}>") for r in rcpts]
    end = None
    if any(code == 250 for code, _ in replies):
        c.expect("DATA", 354)
        c.send(b"Subject: q\r\n\r\n" + b"x" * body_octets + b"\r\n.\r\n")
        end = c.reply()
    c.cmd("QUIT")
    c.close()
    return replies, end


def overfill_alice(srv):
    """Takes alice (quota 4k) over her quota: a message she shares with bob (no quota) is delivered
    to both - one reply answers for both - and she goes over by that message."""
    replies, (end, lines) = send(srv, ["alice@example.test"], 3000)
    assert [r[0] for r in replies] == [250] and end == 250, lines
    replies, (end, lines) = send(srv, ["alice@example.test", "bob@example.test"], 3000)
    assert [r[0] for r in replies] == [250, 250] and end == 250, lines
    assert stored(srv, "alice@example.test")[0] > 4096


@pytest.fixture
def quota_server(make_server, tmp_path):
    table = tmp_path / "quotas"
    table.write_text("# per mailbox\nbob@example.test 0\n")
    return make_server(mailbox_quota="4k", mailbox_quotas=table, mailbox_quota_recheck="1s", mailbox_quota_warning=0)


def test_maildirsize_counts_each_delivery_and_the_end_of_data_refuses_an_overfill(make_server):
    srv = make_server(mailbox_quota="8k")
    for _ in range(3):
        [(code, _)], (end, lines) = send(srv, ["alice@example.test"], 1500)
        assert code == 250 and end == 250, lines
    quota, octets, messages = usage(srv, "alice@example.test")
    assert quota == "8192S"
    assert (octets, messages) == stored(srv, "alice@example.test")  # the lines add up to what is there
    for f in srv.maildir_files("alice@example.test"):  # Maildir++: each name states its file's size
        assert f.name.endswith(f",S={f.stat().st_size}"), f.name
    [(code, _)], (end, lines) = send(srv, ["alice@example.test"], 4000)  # no SIZE: known at its end
    assert code == 250 and end == 452 and lines == ["4.2.2 Mailbox full, try again later"]
    assert stored(srv, "alice@example.test")[1] == 3
    assert 'event=rejected' in srv.log_text() and 'detail="mailbox full"' in srv.log_text()
    [(code, _)], (end, lines) = send(srv, ["alice@example.test"], 9000)  # could never fit
    assert end == 552 and lines[0].startswith("5.2.2 Mailbox full: the message is bigger than"), lines
    [(code, _)], (end, _) = send(srv, ["bob@example.test"], 4000)  # another mailbox, its own usage
    assert end == 250


def test_a_mailbox_over_its_quota_gets_452_at_rcpt_and_others_do_not(quota_server):
    srv = quota_server
    overfill_alice(srv)
    assert usage(srv, "alice@example.test")[1:] == stored(srv, "alice@example.test")
    assert not (maildir(srv, "bob@example.test") / "maildirsize").exists()  # no quota: no file
    replies, end = send(srv, ["alice@example.test", "bob@example.test"], 10)
    assert replies[0] == (452, ["4.2.2 Mailbox full, try again later"]) and replies[1][0] == 250
    assert end[0] == 250  # bob's copy
    assert "reason=mailbox_full" in srv.log_text()
    # a catch-all domain's mailbox has the default quota as well
    replies, end = send(srv, ["anyone@catchall.test"], 5000)
    assert end[0] == 552


def test_declared_size_is_judged_at_rcpt_with_a_real_client(quota_server):
    srv = quota_server
    with smtplib.SMTP("127.0.0.1", srv.port) as client:  # smtplib sends SIZE= when offered
        client.sendmail("s@sender.example", ["alice@example.test"], b"Subject: a\r\n\r\n" + b"y" * 2500)
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail("s@sender.example", ["alice@example.test"], b"Subject: b\r\n\r\n" + b"y" * 2500)
        assert refused.value.recipients["alice@example.test"] == (452, b"4.2.2 Mailbox full, try again later")
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail("s@sender.example", ["alice@example.test"], b"Subject: c\r\n\r\n" + b"y" * 5000)
        code, text = refused.value.recipients["alice@example.test"]
        assert code == 552 and text.startswith(b"5.2.2 ")
        client.sendmail("s@sender.example", ["alice@example.test"], b"Subject: d\r\n\r\n" + b"y" * 100)
    assert stored(srv, "alice@example.test")[1] == 2


def test_room_made_through_imap_is_seen_after_the_recheck_interval(quota_server):
    srv = quota_server
    overfill_alice(srv)
    assert send(srv, ["alice@example.test"], 10)[0][0][0] == 452
    # an IMAP server expunges both messages: it removes the files and appends negative lines
    octets, messages = stored(srv, "alice@example.test")
    for f in srv.maildir_files("alice@example.test"):
        f.unlink()
    with open(maildir(srv, "alice@example.test") / "maildirsize", "a") as f:
        f.write(f"-{octets} -{messages}\n")
    time.sleep(1.2)  # mailbox_quota_recheck
    replies, end = send(srv, ["alice@example.test"], 10)
    assert replies[0][0] == 250 and end[0] == 250


def on_disk(box):
    """(octets, messages) of every message in the mailbox, folders too."""
    files = [f for sub in ("new", "cur", ".Junk/new", ".Junk/cur") for f in (box / sub).glob("*")]
    return sum(f.stat().st_size for f in files), len(files)


def test_a_foreign_quota_or_a_broken_file_is_rebuilt_from_the_messages(quota_server):
    srv = quota_server
    box = maildir(srv, "alice@example.test")
    assert send(srv, ["alice@example.test"], 10)[1][0] == 250  # the server makes the mailbox
    for sub in (".Junk/new", ".Junk/cur", ".Junk/tmp"):
        (box / sub).mkdir(parents=True)
    (box / "new" / "1.M1P1.host").write_bytes(b"a" * 700)
    (box / "cur" / "2.M2P1.host,S=900:2,S").write_bytes(b"b" * 10)  # counted as the size its name states
    (box / ".Junk" / "cur" / "3.M3P1.host:2,").write_bytes(b"c" * 1000)
    for old in ("100S,10C\n5 1\n", "4096S\n5 1\nnot a line\n", "4096S\n12 1"):  # quota, junk, cut
        (box / "maildirsize").write_text(old)
        octets, messages = on_disk(box)
        octets += 900 - 10
        time.sleep(1.1)  # past the recheck interval: the next RCPT reads the file
        assert send(srv, ["alice@example.test"], 10)[1][0] == 250
        lines = (box / "maildirsize").read_text().splitlines()
        assert lines[:2] == ["4096S", f"{octets} {messages}"] and len(lines) == 3, lines  # + this delivery
        assert usage(srv, "alice@example.test")[1:] == (on_disk(box)[0] + 890, messages + 1)
    # a declared size that would overfill it now
    room = 4096 - usage(srv, "alice@example.test")[1]
    c = srv.connect()
    c.expect("EHLO c", 250)
    c.expect(f"MAIL FROM:<s@sender.example> SIZE={room + 1}", 250)
    c.expect("RCPT TO:<alice@example.test>", 452, "4.2.2 Mailbox full")
    c.expect("RSET", 250)
    c.expect(f"MAIL FROM:<s@sender.example> SIZE={room}", 250)
    c.expect("RCPT TO:<alice@example.test>", 250)


def test_a_message_count_quota_refuses_the_message_past_it(make_server, tmp_path):
    """mailbox_quota_messages (Maildir++ 'C'), alone and per mailbox in the table: the maildirsize
    line states it, and a mailbox holding that many messages gets 452 4.2.2 at RCPT."""
    table = tmp_path / "quotas"
    table.write_text("bob@example.test 1M 1\n")
    srv = make_server(mailbox_quota_messages=2, mailbox_quotas=table, mailbox_quota_warning=0)
    for _ in range(2):
        [(code, _)], (end, lines) = send(srv, ["alice@example.test"], 100)
        assert code == 250 and end == 250, lines
    assert usage(srv, "alice@example.test")[0] == "2C"
    replies, end = send(srv, ["alice@example.test"], 100)
    assert replies == [(452, ["4.2.2 Mailbox full, try again later"])] and end is None
    assert send(srv, ["bob@example.test"], 100)[1][0] == 250
    assert usage(srv, "bob@example.test")[0] == "1048576S,1C"
    assert send(srv, ["bob@example.test"], 100)[0] == [(452, ["4.2.2 Mailbox full, try again later"])]
    route = subprocess.run([str(BIN), "-c", str(srv.conf_path), "route", "alice@example.test"], capture_output=True,
                           text=True).stdout
    assert "quota: 2 messages (full: 452 4.2.2 at RCPT); used: " in route and "in 2 messages (100%)" in route, route


def test_quota_table_errors_and_reload(make_server, tmp_path):
    table = tmp_path / "quotas"
    table.write_text("alice@example.test 1k\n@catchall.test 10M\n")
    conf = tmp_path / "bad.conf"
    for line, error in [("alice@example.test lots", "size: expected octets"),
                        ("alice@other.test 1k", "domain is not in local_domains"),
                        ("alice@example.test", "expected 'address size [messages]'"),
                        ("alice@example.test 1k many", "messages: expected a number of messages")]:
        bad = tmp_path / "badquotas"
        bad.write_text("bob@example.test 2k\n" + line + "\n")
        conf.write_text(f"local_domains = example.test\nmailbox_quotas = {bad}\n")
        r = check_config(conf)
        assert r.returncode == 1 and f"{bad}:2: mailbox_quotas: {error}" in r.stderr, r.stderr
    srv = make_server(mailbox_quotas=table)
    route = subprocess.run([str(BIN), "-c", str(srv.conf_path), "route", "alice@example.test", "x@catchall.test",
                            "bob@example.test"], capture_output=True, text=True).stdout
    assert route.count("quota: ") == 2 and "quota: 10485760 octets" in route and "used: 0 octets in 0 messages (0%)" in route
    assert send(srv, ["alice@example.test"], 2000)[1][0] == 552
    assert send(srv, ["bob@example.test"], 2000)[1][0] == 250  # no line, no mailbox_quota: none
    table.write_text("alice@example.test 1M\nbob@example.test 1k\n")
    sighup_and_wait(srv, "reloaded")
    assert send(srv, ["alice@example.test"], 2000)[1][0] == 250
    assert send(srv, ["bob@example.test"], 10)[0][0] == (452, ["4.2.2 Mailbox full, try again later"])
    assert usage(srv, "bob@example.test")[0] == "1024S"
    before = (maildir(srv, "bob@example.test") / "maildirsize").read_text()
    (maildir(srv, "bob@example.test") / "maildirsize").write_text("1S\n")  # stale: counted, not written
    octets = stored(srv, "bob@example.test")[0]
    route = subprocess.run([str(BIN), "-c", str(srv.conf_path), "route", "bob@example.test"], capture_output=True,
                           text=True).stdout
    assert f"quota: 1024 octets (full: 452 4.2.2 at RCPT); used: {octets} octets in 1 messages ({octets * 100 // 1024}%)" in route, route
    assert (maildir(srv, "bob@example.test") / "maildirsize").read_text() == "1S\n" != before


DOVECOT_QUOTA = """\
mail_plugins = $mail_plugins quota
protocol imap {
  mail_plugins = $mail_plugins imap_quota
}
plugin {
  quota = maildir:User quota
  quota_rule = *:storage=20K
}
"""


def imap_quota(port):
    """alice's (used, limit) in KiB as Dovecot's IMAP QUOTA extension (RFC 2087) reports it."""
    with imaplib.IMAP4("127.0.0.1", port) as m:
        m.login("alice@example.test", "alice-secret")
        _, data = m.getquotaroot("INBOX")
        m.logout()
    quota = [d for d in data[1] if d and b"STORAGE" in d][0].decode()
    used, limit = quota.split("STORAGE", 1)[1].strip(" ()").split()
    return int(used), int(limit)


def test_dovecot_reads_the_same_maildirsize_and_its_expunge_makes_room(make_server, tmp_path):
    table = tmp_path / "quotas"
    table.write_text("bob@example.test 0\n")
    srv = make_server(mailbox_quota="20k", mailbox_quotas=table, mailbox_quota_recheck="1s", mailbox_quota_warning=0)
    for _ in range(3):
        assert send(srv, ["alice@example.test"], 5000)[1][0] == 250
    assert send(srv, ["alice@example.test", "bob@example.test"], 5000)[1][0] == 250  # soft: over by one
    assert send(srv, ["alice@example.test"], 10)[0][0][0] == 452
    octets = usage(srv, "alice@example.test")[1]
    assert octets > 20480
    owner = pwd.getpwnam("postern") if os.geteuid() == 0 else None  # the mailboxes' owner
    with dovecot_running(tmp_path, mail_location=f"maildir:{srv.mail_dir}/%d/%n", owner=owner,
                         extra=DOVECOT_QUOTA) as dovecot:
        assert imap_quota(dovecot["imap"]) == (-(-octets // 1024), 20)  # Dovecot's count is Postern's (KiB, up)
        with imaplib.IMAP4("127.0.0.1", dovecot["imap"]) as m:  # the owner deletes two messages
            m.login("alice@example.test", "alice-secret")
            m.select("INBOX")
            m.store("1:2", "+FLAGS", "\\Deleted")
            m.expunge()
            m.logout()
        left = usage(srv, "alice@example.test")
        assert left[0] == "20480S" and left[2] == 2, left  # Dovecot appended its negative lines
        assert imap_quota(dovecot["imap"])[0] == -(-left[1] // 1024)
    time.sleep(1.1)  # mailbox_quota_recheck
    replies, end = send(srv, ["alice@example.test"], 5000)
    assert replies[0][0] == 250 and end[0] == 250
    assert usage(srv, "alice@example.test")[1:] == on_disk(maildir(srv, "alice@example.test"))  # new/ and cur/


def test_the_owner_gets_one_notice_when_a_delivery_takes_the_mailbox_past_the_warning_mark(make_server):
    srv = make_server(mailbox_quota="10k", mailbox_quota_warning="50")
    assert send(srv, ["alice@example.test"], 3000)[1][0] == 250  # about 33%: no notice
    assert send(srv, ["alice@example.test"], 3000)[1][0] == 250  # about 66%: past 50
    notices = lambda: [f for f in srv.maildir_files("alice@example.test") if b"Subject: Your mailbox is" in f.read_bytes()]
    [notice] = wait_for(notices, what="the quota notice")
    text = notice.read_bytes().decode()
    octets = int(srv.log_text().split("event=quota_notice ")[1].split("used=")[1].split()[0])
    assert f"Subject: Your mailbox is {octets * 100 // 10240}% full\n" in text and "From: Mail System <postmaster@" in text
    assert "Return-Path: <>\n" in text and "Auto-Submitted: auto-generated\n" in text  # RFC 3834: no replies to it
    assert "To: <alice@example.test>\n" in text and "452 4.2.2 Mailbox full" in text and "empty the Trash" in text
    assert send(srv, ["alice@example.test"], 1000)[1][0] == 250  # still past the mark: no second notice
    time.sleep(0.5)
    assert len(notices()) == 1 and srv.log_text().count("event=quota_notice ") == 1
    wait_for(lambda: usage(srv, "alice@example.test")[1:] == stored(srv, "alice@example.test"),
             what="the notice counted in maildirsize too")
    assert send(srv, ["bob@example.test"], 10)[1][0] == 250 and not [  # far from the mark: none
        f for f in srv.maildir_files("bob@example.test") if b"Your mailbox is" in f.read_bytes()]


def test_a_maildirsize_that_cannot_be_used_never_holds_mail_back(make_server):
    srv = make_server(mailbox_quota="4k", mailbox_quota_warning=0)
    assert send(srv, ["alice@example.test"], 10)[1][0] == 250
    f = maildir(srv, "alice@example.test") / "maildirsize"
    f.unlink()
    f.mkdir()  # neither readable nor replaceable as a file
    srv.stop()
    srv.start()  # nothing remembered
    for _ in range(3):
        replies, end = send(srv, ["alice@example.test"], 100)
        assert replies[0][0] == 250 and end[0] == 250
    log = srv.log_text()
    assert log.count("event=quota_unreadable") == 1, log  # once per mailbox_quota_recheck, not per RCPT
    assert "maildirsize" in log.split("event=quota_unreadable")[1].split("\n")[0]
    assert stored(srv, "alice@example.test")[1] == 4


def test_an_alias_copy_for_a_full_mailbox_is_judged_at_the_end_of_data(make_server, tmp_path):
    aliases = tmp_path / "aliases"
    aliases.write_text("info@example.test alice@example.test\nteam@example.test alice@example.test, bob@example.test\n")
    quotas = tmp_path / "quotas"
    quotas.write_text("bob@example.test 0\n")
    srv = make_server(mailbox_quota="8k", mailbox_quotas=quotas, aliases=aliases, mailbox_quota_warning=0)
    for _ in range(3):
        assert send(srv, ["alice@example.test"], 2000)[1][0] == 250
    srv.stop()
    srv.start()  # nothing known of alice: mail reaches her only through the aliases now

    def through(alias, octets):
        c = srv.connect()
        c.expect("EHLO client.example", 250)
        c.expect("MAIL FROM:<s@sender.example>", 250)
        c.expect(f"RCPT TO:<{alias}>", 250)  # an alias is not refused for a full target at RCPT
        time.sleep(0.3)  # a client's round trips: the target's usage is read meanwhile
        c.expect("DATA", 354)
        c.send(b"Subject: a\r\n\r\n" + b"z" * octets + b"\r\n.\r\n")
        return c.reply()

    assert through("info@example.test", 3000)[0] == 452  # its only target would overfill
    assert through("team@example.test", 3000)[0] == 250  # bob takes it; alice goes over by this one
    assert usage(srv, "alice@example.test")[1:] == stored(srv, "alice@example.test")  # counted through an alias too
    assert stored(srv, "alice@example.test")[0] > 8192 and through("info@example.test", 10)[0] == 452


def test_a_message_count_quota_has_its_notice_too(make_server):
    srv = make_server(mailbox_quota_messages=4, mailbox_quota_warning="50")
    assert send(srv, ["alice@example.test"], 100)[1][0] == 250  # 1 of 4: no notice
    assert send(srv, ["alice@example.test"], 100)[1][0] == 250  # 2 of 4: the mark
    notices = lambda: [f for f in srv.maildir_files("alice@example.test") if b"Subject: Your mailbox is" in f.read_bytes()]
    [notice] = wait_for(notices, what="the quota notice")
    text = notice.read_bytes().decode()
    assert "Subject: Your mailbox is 50% full\n" in text
    assert "in 2 of the 4 messages it may hold (50%).\n" in text, text
