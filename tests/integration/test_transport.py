"""Routing, end to end, through the real binary: relay_domains and relay_recipients (a gateway
or backup MX takes mail for domains it does not deliver itself, from any client), the transport
table, mail loops (RFC 5321 5.1), and exchangers found down - to the scripted peer on 127.0.0.4
and the aiosmtpd peers (test_relay's fixtures) found through the test DNS server."""
import socket
import subprocess
import threading
import time

import pytest

from conftest import BIN, free_port, sighup_and_wait, wait_for
from test_relay import queue_empty, rcpts_at_peer, relay, scripted, send  # noqa: F401 (relay: a fixture)


def ok_reply(line, n):
    return b"354 go\r\n" if line == "DATA" else b"250 2.0.0 ok\r\n"


def table(tmp_path, name, text):
    f = tmp_path / name
    f.write_text(text)
    return f


def check_config(tmp_path, text):
    conf = tmp_path / "t.conf"
    conf.write_text(text)
    return subprocess.run([str(BIN), "check-config", "-c", str(conf)], capture_output=True, text=True, timeout=10)


def test_relay_domain_is_taken_from_any_client_and_sent_to_its_transport(relay, tmp_path):
    """A client that may not relay still gets 250 for a relay domain's address (and 551 for any
    other domain); the mail goes to the domain's transport entry, not to relay_host (which cannot
    even be resolved here) and not to the domain's own DNS (it has none)."""
    peer = scripted(relay, reply=ok_reply)
    transport = table(tmp_path, "transport", f"# gateway\ngw.test [127.0.0.4]:{relay['port']}\n")
    srv = relay["start"](relay_networks="", relay_domains="gw.test", transport=transport,
                         relay_host="[relay.nowhere.test]", smtp_port=1)
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<someone@elsewhere.example>", 250)
    c.expect("RCPT TO:<someone@other.test>", 551, "5.7.1")
    c.expect("RCPT TO:<Bob@GW.test>", 250, "2.1.5")
    c.expect("QUIT", 221)
    send(srv, ["bob@gw.test"], sender="someone@elsewhere.example")
    wait_for(lambda: rcpts_at_peer(peer) == ["RCPT TO:<bob@gw.test>"], what="the mail at the gateway's next hop")
    wait_for(lambda: queue_empty(srv), what="the queue empty")
    log = srv.log_text()
    assert f"event=route transport=[127.0.0.4]:{relay['port']} status=ok" in log
    assert "relay_host=" not in log and "event=route domain=" not in log


def test_relay_recipients_refuse_the_addresses_not_listed(relay, tmp_path):
    """With relay_recipients the gateway refuses unknown addresses itself (550 5.1.1, no backscatter);
    extensions and @domain catch-alls work as in recipients; postmaster is always taken."""
    rr = table(tmp_path, "relay-rcpts", "bob@gw.test\n@all.gw.test\n")
    srv = relay["start"](relay_networks="", relay_domains="gw.test, all.gw.test", relay_recipients=rr,
                         transport=table(tmp_path, "transport", ".gw.test [127.0.0.4]\ngw.test [127.0.0.4]\n"))
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<someone@elsewhere.example>", 250)
    c.expect("RCPT TO:<bob@gw.test>", 250)
    c.expect("RCPT TO:<bob+news@gw.test>", 250)
    c.expect("RCPT TO:<carol@gw.test>", 550, "5.1.1")
    c.expect("RCPT TO:<anyone@all.gw.test>", 250)
    c.expect("RCPT TO:<postmaster@gw.test>", 250)
    assert "reason=unknown_relay_recipient" in srv.log_text()


def test_transport_entry_wins_over_the_domain_dns_and_covers_subdomains(relay, tmp_path):
    """A relaying client's mail for a domain with a transport entry goes there: no RCPT-time null MX
    refusal from the domain's public DNS (nullmx-sender.test publishes one), and '.corp.test' covers
    every subdomain of corp.test (not corp.test itself, which has no entry: its DNS is asked)."""
    peer = scripted(relay, reply=ok_reply)
    transport = table(tmp_path, "transport", "nullmx-sender.test [127.0.0.4]\n.corp.test mx.scripted.test\n")
    srv = relay["start"](transport=transport, retry_schedule="1h")
    send(srv, ["a@nullmx-sender.test", "b@eu.corp.test"])
    wait_for(lambda: len(rcpts_at_peer(peer)) == 2, what="both recipients at the next hop")
    assert sorted(rcpts_at_peer(peer)) == ["RCPT TO:<a@nullmx-sender.test>", "RCPT TO:<b@eu.corp.test>"]
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<alice@example.test>", 250)
    c.expect("RCPT TO:<c@corp.test>", 550, "5.1.2")  # no entry: DNS decides, and corp.test does not exist
    log = srv.log_text()
    assert "event=route transport=mx.scripted.test status=ok" in log


def test_relay_host_password_is_never_sent_to_a_transport_next_hop(relay, tmp_path):
    """relay_host_auth is relay_host's account: a transport next hop that offers AUTH gets the
    mail without any AUTH command (before, the client tried to log in there too)."""
    auth = tmp_path / "relay-auth"
    auth.write_text("relay-user@example.test:secret\n")
    auth.chmod(0o600)
    peer = scripted(relay, reply=ok_reply, ehlo=b"250-mx.scripted.test\r\n250 AUTH PLAIN LOGIN\r\n")
    srv = relay["start"](relay_host="[relay.nowhere.test]", relay_host_auth=auth,
                         transport=table(tmp_path, "transport", "partner.test [mx.scripted.test]\n"))
    send(srv, ["x@partner.test"])
    wait_for(lambda: peer.bodies, what="the mail at the transport next hop")
    assert not any(line.startswith("AUTH") for line in peer.lines)


def test_transport_table_is_read_again_at_reload(relay, tmp_path):
    """A changed transport table applies to the mail dispatched after SIGHUP."""
    peer = scripted(relay, reply=ok_reply)
    transport = table(tmp_path, "transport", "partner.test [relay.nowhere.test]\n")
    srv = relay["start"](transport=transport, retry_schedule="1s")
    send(srv, ["x@partner.test"])
    wait_for(lambda: "4.4.3 transport [relay.nowhere.test] cannot be used" in srv.log_text(),
             what="the deferral")
    transport.write_text("partner.test [mx.scripted.test]\n")
    sighup_and_wait(srv, "reload")
    wait_for(lambda: peer.bodies, what="the mail at the new next hop")
    assert srv.maildir_files("alice@example.test") == []  # deferred, never bounced


def test_mail_for_a_domain_whose_best_mx_is_this_server_is_deferred_as_a_loop(relay):
    """RFC 5321 5.1: this server (self.scripted.test) must not send mail to itself - here it would
    reach the scripted peer, which stands in for it. loop.test names it as its only MX; a domain
    that is its own name has it as implicit MX. Both are deferred 4.4.6 with what to do."""
    peer = scripted(relay, reply=ok_reply)
    srv = relay["start"](hostname="self.scripted.test", retry_schedule="1h")
    send(srv, ["x@loop.test"])
    send(srv, ["y@self.scripted.test"])
    wait_for(lambda: srv.log_text().count("event=mail_loop") == 2, what="both loops found")
    wait_for(lambda: srv.log_text().count("status=deferred") == 2, what="both deferred")
    assert "4.4.6 mail for loop.test loops back to this server (self.scripted.test): it is the best mail " \
        "exchanger (preference 10); list the domain in local_domains, or route it with a transport entry" \
        in srv.log_text()
    assert not peer.lines


@pytest.mark.parametrize("listen", ["127.0.0.5", "0.0.0.0", "proxy_addresses"])
def test_an_exchanger_at_this_server_address_is_found_whatever_its_name(relay, listen):
    """selfaddr.test's implicit MX is 127.0.0.5, where this server (named otherwise) listens on the
    port mail goes to: by that address, or by a wildcard listener (127.0.0.0/8 is all local), or
    through NAT (proxy_addresses: nothing here listens there). The mail is deferred as a loop
    instead of being sent to this server itself, again and again."""
    port = free_port()
    conf = dict(listen=f"127.0.0.1:{{port}}, {listen}:{port}")
    if listen == "proxy_addresses":
        conf = dict(proxy_addresses="192.0.2.1, 127.0.0.5/32")
    srv = relay["start"](**conf, smtp_port=port, retry_schedule="1h")
    send(srv, ["x@selfaddr.test"])
    wait_for(lambda: "status=deferred" in srv.log_text(), what="the deferral")
    log = srv.log_text()
    assert "event=mail_loop domain=selfaddr.test" in log and "status=sent" not in log
    assert log.count("event=accepted session=") == 1, log[-3000:]


def test_relay_host_that_is_this_server_is_a_loop(relay):
    port = free_port()
    srv = relay["start"](listen=f"127.0.0.1:{{port}}, 127.0.0.5:{port}", relay_host=f"[127.0.0.5]:{port}",
                         retry_schedule="1h")
    send(srv, ["x@two-mx.test"])
    wait_for(lambda: "status=deferred" in srv.log_text(), what="the deferral")
    assert f"4.4.6 relay_host [127.0.0.5]:{port} is this server itself (mx.example.test): mail sent there would " \
        "loop; name another host" in srv.log_text()


def test_backup_mx_sends_only_to_the_more_preferred_exchangers(relay):
    """As backup MX of backup.test (preference 20; the primary, preference 10, is down) the mail
    waits for the primary: it is never sent to this server itself (the scripted peer here)."""
    peer = scripted(relay, reply=ok_reply)
    srv = relay["start"](hostname="self.scripted.test", relay_networks="", relay_domains="backup.test",
                         retry_schedule="1h")
    send(srv, ["x@backup.test"], sender="someone@elsewhere.example")
    wait_for(lambda: "status=deferred" in srv.log_text(), what="the deferral")
    assert "event=mail_loop" not in srv.log_text() and not peer.lines


class SilentHost:
    """A mail exchanger that takes TCP connections and never greets (hung, or a tarpit)."""

    def __init__(self, host, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.conns = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def test_an_exchanger_that_did_not_greet_is_tried_last_for_a_while(relay):
    """two-mx.test's primary (127.0.0.2) takes connections and never greets: the first message
    waits out smtp_greeting_timeout there, then goes to the secondary; the next message goes to
    the secondary at once, without connecting to the primary again."""
    silent = SilentHost("127.0.0.2", relay["port"])
    try:
        sink = relay["peers"].start("127.0.0.3")
        srv = relay["start"](retry_schedule="1m")
        send(srv, ["a@two-mx.test"])
        wait_for(lambda: len(sink.messages) == 1, timeout=15, what="the first message at the secondary")
        assert "event=mail_exchanger_down domain=two-mx.test host=mx1.two-mx.test seconds=60" in srv.log_text()
        started = time.time()
        send(srv, ["b@two-mx.test"])
        wait_for(lambda: len(sink.messages) == 2, timeout=15, what="the second message at the secondary")
        assert time.time() - started < 2.5 and len(silent.conns) == 1  # not the 3 s greeting timeout again
    finally:
        silent.close()


def test_route_command_says_what_happens_to_each_address(tmp_path):
    """`postern route ADDRESS...`: the RCPT verdict and the next hop, from the configuration alone
    (no server, no DNS); exit 1 when some address would be refused."""
    t = {name: table(tmp_path, name, text) for name, text in {
        "rcpts": "alice@example.test\n", "moved": "carol@example.test carol@new.example\n",
        "rr": "bob@gw.test\n@eu.branch.test\n", "tr": "gw.test [10.0.0.5]:2525\n.corp.test relay.corp.test\n"}.items()}
    conf = tmp_path / "t.conf"
    conf.write_text(f"hostname = mx.example.test\nmail_dir = {tmp_path}/mail\nspool_dir = {tmp_path}/spool\n"
                    f"local_domains = example.test\nrecipients = {t['rcpts']}\nmoved = {t['moved']}\n"
                    f"relay_domains = gw.test, .branch.test\nrelay_recipients = {t['rr']}\ntransport = {t['tr']}\n"
                    "relay_host = [smarthost.example.net]:587\nnull_mx_domains = nomail.test\n")
    run = lambda *a: subprocess.run([str(BIN), "-c", str(conf), "route", *a], capture_output=True,  # noqa: E731
                                    text=True, timeout=10)
    out = run("Alice+tag@Example.TEST", "bob@gw.test", "x@eu.corp.test", "x@other.org", "x@[192.0.2.1]",
              "x@eu.branch.test", "x@branch.test")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "x@eu.branch.test\n  relay domain: accepted from any client" in out.stdout  # .branch.test
    assert "x@branch.test\n  relayed: only for relay_networks clients" in out.stdout  # not the parent itself
    assert f"  local: delivered to {tmp_path}/mail/example.test/alice/new/ (from any client)" in out.stdout
    assert "bob@gw.test\n  relay domain: accepted from any client, passed on\n    sent to the transport entry's " \
        "next hop [10.0.0.5]:2525 (its address records, no MX lookup, port 2525)" in out.stdout
    assert "x@eu.corp.test\n  relayed: only for relay_networks clients and authenticated users; others get 551 " \
        "5.7.1\n    sent to the transport entry's next hop relay.corp.test (MX lookup, port 25)" in out.stdout
    assert "x@other.org\n  relayed: only for relay_networks clients and authenticated users; others get 551 " \
        "5.7.1\n    sent to relay_host [smarthost.example.net]:587" in out.stdout
    out = run("carol@example.test", "eve@gw.test", "x@nomail.test", "bad@@x")
    assert out.returncode == 1
    for line in ("refused at RCPT: 551 5.1.6 User not local; please try <carol@new.example> (moved)",
                 "eve@gw.test\n  refused at RCPT: 550 5.1.1 Mailbox not found (unknown_relay_recipient)",
                 "refused at RCPT: 556 5.1.10 Recipient address has null MX (null_mx_domain)",
                 "bad@@x\n  refused at RCPT: 553 5.1.3"):
        assert line in out.stdout, out.stdout
    assert run().returncode == 2


@pytest.mark.parametrize("conf, tables, error", [
    ("local_domains = example.test\nrelay_domains = gw.test, Example.TEST\n", {},
     "t.conf:2: relay_domains: example.test is in local_domains too"),
    ("relay_domains = gw.test\nrelay_recipients = {rr}\n", {"rr": "bob@gw.test\nbob@other.test\n"},
     "rr:2: relay_recipients: domain is not in relay_domains: 'bob@other.test'"),
    ("transport = {tr}\n", {"tr": "# routes\ngw.test [127.0.0.4]:99999\n"},
     "tr:2: transport: next hop: expected [name], [address] or name, with an optional :port, or lmtp:[host]:port "
     "or lmtp:unix:/path: 'gw.test'"),
    ("transport = {tr}\n", {"tr": "gw.test\n"}, "tr:1: transport: expected 'domain next-hop': 'gw.test'"),
    ("transport = {tr}\n", {"tr": "bad_domain!.test [127.0.0.4]\n"}, "tr:1: transport: invalid domain"),
    ("local_domains = example.test\ntransport = {tr}\n", {"tr": "Example.Test [127.0.0.4]\n"},
     "tr:1: transport: domain is in local_domains: its mail is delivered here (to Maildir, or to an lmtp: next "
     "hop), never routed: 'Example.Test'"),
])
def test_relay_domain_and_transport_config_errors(tmp_path, conf, tables, error):
    paths = {name: table(tmp_path, name, text) for name, text in tables.items()}
    out = check_config(tmp_path, conf.format(**paths))
    assert out.returncode == 1 and error in out.stderr, out.stderr


def test_relay_domains_without_relay_recipients_is_warned_about(tmp_path):
    out = check_config(tmp_path, "relay_domains = gw.test\n")
    assert out.returncode == 0 and "key=relay_recipients detail=\"not set: every address in relay_domains" in out.stderr
    rr = table(tmp_path, "rr", "@gw.test\n")
    out = check_config(tmp_path, f"relay_domains = gw.test\nrelay_recipients = {rr}\n")
    assert out.returncode == 0 and "key=relay_recipients" not in out.stderr
