"""Access tables (client_access, sender_access, helo_access) through the real binary, with clients connecting
from several loopback addresses: reject (550 5.7.1) and defer (450 4.7.1) at each RCPT but
postmaster's, with the table's text; permit for clients (no block list, SPF, sender domain check
or greeting delay); the most specific entry wins; mistakes named at their line; reloads."""
import time

from conftest import Client, check_config, sighup_and_wait


def session_from(srv, source, sender="someone@elsewhere.example"):
    c = Client(srv.port, source=source)
    assert c.reply()[0] == 220
    c.expect("EHLO client.example", 250)
    c.expect(f"MAIL FROM:<{sender}>", 250)
    return c


def test_client_access_rejects_defers_and_the_most_specific_network_wins(make_server, tmp_path):
    table = tmp_path / "client_access"
    table.write_text("# networks\n"
                     "127.0.0.0/8   reject  Not from this network; write to abuse@example.test\n"
                     "127.0.0.5     permit\n"
                     "127.0.0.6/32  defer\n"
                     "127.0.0.7     reject\n")
    srv = make_server(client_access=table)
    c = session_from(srv, "127.0.0.2")
    lines = c.expect("RCPT TO:<alice@example.test>", 550)
    assert lines[-1] == "5.7.1 Client host [127.0.0.2] refused: Not from this network; write to abuse@example.test"
    c.expect("RCPT TO:<postmaster@example.test>", 250)  # RFC 5321 4.5.1
    c.expect("RCPT TO:<Postmaster>", 250)
    c.expect("QUIT", 221)
    for source, code, text in (("127.0.0.6", 450, "4.7.1 Client host [127.0.0.6] temporarily refused"),
                               ("127.0.0.7", 550, "5.7.1 Client host [127.0.0.7] refused"),
                               ("127.0.0.5", 250, None)):
        c = session_from(srv, source)
        lines = c.expect("RCPT TO:<bob@example.test>", code)
        assert text is None or lines[-1] == text, lines
        c.expect("QUIT", 221)
    log = srv.log_text()
    assert "client=127.0.0.2 action=reject line=2" in log and "client=127.0.0.6 action=defer line=4" in log
    assert "client=127.0.0.5 action=permit line=3" in log
    assert "rcpt=<alice@example.test> reply=550 reason=client_access" in log
    assert "rcpt=<bob@example.test> reply=450 reason=client_access" in log


def test_a_permitted_client_skips_block_lists_spf_sender_domain_check_and_greet_delay(make_server, tmp_path):
    (tmp_path / "client_access").write_text("127.0.0.2 permit\n")
    srv = make_server(client_access=tmp_path / "client_access", dnsbl_zones="dnsbl.test", spf_policy="reject",
                      sender_domain_check="yes", greet_delay="2s")
    started = time.monotonic()
    other = session_from(srv, "127.0.0.3", "carol@spf-fail-mx.test")  # not permitted: every check applies
    assert time.monotonic() - started > 1.8
    other.expect("RCPT TO:<alice@example.test>", 550, "5.7.23")
    other.expect("RSET", 250)
    other.expect("MAIL FROM:<a@nxdomain.test>", 550, "5.1.8")
    other.expect("QUIT", 221)
    started = time.monotonic()
    c = session_from(srv, "127.0.0.2", "carol@spf-fail-mx.test")  # listed in dnsbl.test, SPF fails
    assert time.monotonic() - started < 1.5  # greeted at once: far below the 2 s delay
    c.expect("RCPT TO:<alice@example.test>", 250)
    c.expect("RSET", 250)
    c.expect("MAIL FROM:<a@nxdomain.test>", 250)
    c.expect("RCPT TO:<alice@example.test>", 250)
    c.expect("QUIT", 221)
    log = srv.log_text()
    assert "event=dnsbl_listed" not in log
    assert log.count("identity=carol@spf-fail-mx.test result=fail") == 1  # the permitted client's: not asked


def test_sender_access_by_address_extension_domain_subdomains_and_null_sender(make_server, tmp_path):
    table = tmp_path / "sender_access"
    table.write_text("spammer@bad.test      reject\n"
                     "bad.test              defer  Try again in an hour\n"
                     ".evil.test            reject No mail from its subdomains\n"
                     "<>                    reject\n"
                     "@Fine.Bad.TEST        defer\n")
    srv = make_server(sender_access=table)
    cases = (("spammer@bad.test", 550, "5.7.1 Sender address refused"),
             ("Spammer+news@BAD.test", 550, "5.7.1 Sender address refused"),  # case, extension
             ("other@bad.test", 450, "4.7.1 Sender address temporarily refused: Try again in an hour"),
             ("x@a.b.evil.test", 550, "5.7.1 Sender address refused: No mail from its subdomains"),
             ("x@fine.bad.test", 450, "4.7.1 Sender address temporarily refused"),
             ("x@evil.test", 250, None), ("x@sub.bad.test", 250, None), ("", 550, "5.7.1 Sender address refused"))
    for sender, code, text in cases:
        c = session_from(srv, "127.0.0.1", sender)
        lines = c.expect("RCPT TO:<alice@example.test>", code)
        assert text is None or lines[-1] == text, (sender, lines)
        c.expect("RCPT TO:<postmaster@example.test>", 250)
        c.expect("QUIT", 221)
    log = srv.log_text()
    assert "sender=<spammer@bad.test> action=reject line=1" in log
    assert "sender=<Spammer+news@BAD.test> action=reject line=1" in log
    assert "sender=<> action=reject line=4" in log
    assert "rcpt=<alice@example.test> reply=450 reason=sender_access" in log


def test_helo_access_by_name_and_parent_and_each_ehlo_anew(make_server, tmp_path):
    table = tmp_path / "helo_access"
    table.write_text("spammer.example reject Go away\n.dyn.example defer\n")
    srv = make_server(helo_access=table)

    def session(helo):
        c = Client(srv.port)
        assert c.reply()[0] == 220
        c.expect(f"EHLO {helo}", 250)
        c.expect("MAIL FROM:<someone@elsewhere.example>", 250)
        return c

    c = session("Spammer.Example")
    lines = c.expect("RCPT TO:<alice@example.test>", 550)
    assert lines[-1] == "5.7.1 Helo name <Spammer.Example> refused: Go away"
    c.expect("RCPT TO:<postmaster@example.test>", 250)  # RFC 5321 4.5.1
    c.expect("EHLO fine.example", 250)  # a new EHLO, a new verdict (and a new transaction)
    c.expect("MAIL FROM:<someone@elsewhere.example>", 250)
    c.expect("RCPT TO:<alice@example.test>", 250)
    c.expect("QUIT", 221)
    c = session("host.dyn.example")
    lines = c.expect("RCPT TO:<bob@example.test>", 450)
    assert lines[-1] == "4.7.1 Helo name <host.dyn.example> temporarily refused"
    c.expect("QUIT", 221)
    c = session("dyn.example")  # .dyn.example: the names below it only
    c.expect("RCPT TO:<bob@example.test>", 250)
    c.expect("QUIT", 221)
    log = srv.log_text()
    assert "helo=Spammer.Example action=reject line=1" in log and "reply=550 reason=helo_access" in log


def test_check_config_names_each_access_table_mistake(tmp_path):
    (tmp_path / "client_access").write_text(
        "10.0.0.1/8 reject\n"
        "not-a-network reject\n"
        "10.0.0.0/8 allow\n"
        "10.0.0.0/8 reject fine\n"
        "10.0.0.0/8 defer\n"
        "192.0.2.1\n"
        "192.0.2.2 reject caf\u00e9\n"
        "192.0.2.3 reject " + "x" * 201 + "\n"
        "2001:db8::/32 permit\n", encoding="utf-8")
    (tmp_path / "sender_access").write_text(
        "a@b.test permit\n"
        "a@@b.test reject\n"
        "b.test reject\n"
        "B.TEST defer\n"
        "[192.0.2.1] reject\n"
        "c.test\n")
    (tmp_path / "helo_access").write_text(
        "pc.example permit\n"
        "a@pc.example reject\n"
        ".dyn.example defer\n"
        ".DYN.example reject\n"
        "lonely.example\n")
    (tmp_path / "postern.conf").write_text(
        f"hostname = mx.example.test\nlocal_domains = example.test\n"
        f"client_access = {tmp_path / 'client_access'}\nsender_access = {tmp_path / 'sender_access'}\n"
        f"helo_access = {tmp_path / 'helo_access'}\n")
    r = check_config(tmp_path / "postern.conf")
    assert r.returncode == 1
    errors = r.stderr.splitlines()
    for table, line, words in (
            ("client_access", 1, "host bits set: it would mean 10.0.0.0/8"),
            ("client_access", 2, "expected a network like 192.0.2.0/24"),
            ("client_access", 3, "the action must be reject, defer or permit"),
            ("client_access", 5, "network listed twice (first at line 4)"),
            ("client_access", 6, "expected 'network action [text]'"),
            ("client_access", 7, "reply text must be printable ASCII"),
            ("client_access", 8, "reply text longer than 200 characters"),
            ("sender_access", 1, "permit is for client_access only"),
            ("sender_access", 2, "expected an address (user@domain), a domain"),
            ("sender_access", 4, "sender listed twice (first at line 3)"),
            ("sender_access", 5, "expected an address (user@domain), a domain"),
            ("sender_access", 6, "expected 'sender action [text]'"),
            ("helo_access", 1, "permit is for client_access only: anyone can write any EHLO name"),
            ("helo_access", 2, "expected a host name, or .domain"),
            ("helo_access", 4, "name listed twice (first at line 3)"),
            ("helo_access", 5, "expected 'name action [text]'")):
        prefix = f"postern: {tmp_path / table}:{line}: {table}: "
        assert any(e.startswith(prefix) and words in e for e in errors), (table, line, r.stderr)
    assert "16 configuration errors" in r.stderr, r.stderr


def test_a_reload_applies_changed_tables(make_server, tmp_path):
    clients, senders = tmp_path / "client_access", tmp_path / "sender_access"
    clients.write_text("127.0.0.9 defer\n")
    senders.write_text("")
    srv = make_server(client_access=clients, sender_access=senders)
    before = session_from(srv, "127.0.0.2", "x@later.test")
    before.expect("RCPT TO:<alice@example.test>", 250)
    clients.write_text("127.0.0.2 reject\n")
    senders.write_text("later.test reject\n")
    sighup_and_wait(srv, "reloaded")
    before.expect("RCPT TO:<bob@example.test>", 250)  # the verdicts of this transaction stand
    before.expect("RSET", 250)
    before.expect("MAIL FROM:<x@later.test>", 250)  # the client's entry is taken again at this MAIL
    before.expect("RCPT TO:<alice@example.test>", 550, "Client host [127.0.0.2] refused")
    before.expect("QUIT", 221)
    assert "client=127.0.0.2 action=reject line=1 reloaded=yes" in srv.log_text()
    other = session_from(srv, "127.0.0.3", "x@later.test")
    other.expect("RCPT TO:<alice@example.test>", 550, "Sender address refused")  # the new sender_access
    other.expect("QUIT", 221)
    after = session_from(srv, "127.0.0.2")
    after.expect("RCPT TO:<alice@example.test>", 550, "Client host [127.0.0.2] refused")
    after.expect("QUIT", 221)
