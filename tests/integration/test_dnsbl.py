"""DNS block lists (dnsbl_zones, RFC 5782), through the real binary and the test DNS server:
127.0.0.2 and ::1 are listed in dnsbl.test, 127.0.0.3 gets the list's error code 127.255.255.254,
127.0.0.1 is not listed."""
import time

from conftest import Client


def session_from(srv, source, host="127.0.0.1"):
    c = Client(srv.port, host=host, source=source)
    assert c.reply()[0] == 220
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<someone@elsewhere.example>", 250)
    return c


def test_a_listed_client_is_refused_at_rcpt_but_may_write_to_postmaster(make_server):
    srv = make_server(dnsbl_zones="second.test, dnsbl.test")
    c = session_from(srv, "127.0.0.2")
    lines = c.expect("RCPT TO:<alice@example.test>", 554, "5.7.1")
    assert lines[-1] == "5.7.1 Service unavailable; client [127.0.0.2] blocked using second.test"  # first listed
    c.expect("RCPT TO:<postmaster@example.test>", 250)  # RFC 5321 4.5.1
    c.expect("RCPT TO:<Postmaster>", 250)
    c.expect("QUIT", 221)
    log = srv.log_text()
    assert "event=dnsbl_listed session=" in log and "client=127.0.0.2 zone=dnsbl.test answer=127.0.0.2" in log
    assert "zone=second.test answer=127.0.0.11" in log
    assert "rcpt=<alice@example.test> reply=554 reason=dnsbl" in log


def test_unlisted_error_code_and_exempt_clients_are_not_refused(make_server):
    srv = make_server(dnsbl_zones="dnsbl.test", relay_networks="127.0.0.4/32")
    for source in ("127.0.0.1", "127.0.0.3", "127.0.0.4"):  # not listed; the list's error; relay_networks
        c = session_from(srv, source)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("QUIT", 221)
    log = srv.log_text()
    assert "event=dnsbl_error zone=dnsbl.test answer=127.255.255.254" in log
    assert "event=dnsbl_listed" not in log


def test_ipv6_client_is_looked_up_by_its_nibbles(make_server):
    srv = make_server(dnsbl_zones="dnsbl.test", listen="127.0.0.1:{port}, [::1]:{port}")
    c = session_from(srv, "::1", host="::1")
    c.expect("RCPT TO:<bob@example.test>", 554, "blocked using dnsbl.test")
    c.expect("QUIT", 221)


def test_a_silent_list_delays_mail_at_most_dns_timeout(make_server, silent_resolver):
    srv = make_server(dnsbl_zones="dnsbl.test", dns_resolver=silent_resolver, dns_timeout="1s")
    started = time.monotonic()
    c = session_from(srv, "127.0.0.2")
    waited = time.monotonic() - started
    c.expect("RCPT TO:<alice@example.test>", 250)  # no answer: no verdict
    c.expect("QUIT", 221)
    assert 0.8 < waited < 3, waited
    assert "event=dnsbl_timeout" in srv.log_text()


def test_a_reload_applies_new_zones_to_the_next_connections(make_server):
    from conftest import sighup_and_wait
    srv = make_server(dnsbl_zones="nowhere.test")
    before = session_from(srv, "127.0.0.2")  # nowhere.test lists nobody
    conf = srv.conf_path.read_text().replace("dnsbl_zones = nowhere.test", "dnsbl_zones = dnsbl.test")
    srv.conf_path.write_text(conf)
    sighup_and_wait(srv, "reloaded")
    before.expect("RCPT TO:<alice@example.test>", 250)  # its session kept the zones it started with
    before.expect("QUIT", 221)
    after = session_from(srv, "127.0.0.2")
    after.expect("RCPT TO:<alice@example.test>", 554, "blocked using dnsbl.test")
    after.expect("QUIT", 221)
    assert "event=reload_needs_restart" not in srv.log_text()
