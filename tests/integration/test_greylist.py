"""Greylisting (RFC 6647) through the real binary: real clients from loopback addresses of one /24,
greylist_delay of a second or two; the 451 and its retry, the network and tagged senders, who is
never greylisted, auto-allow, the table across a restart, the metrics."""
import smtplib
import time

from conftest import free_port, wait_for
from test_dnsbl import session_from
from test_metrics import values


def rcpt(srv, source, to, sender="someone@elsewhere.example"):
    """(code, last reply line) of RCPT TO:<to> from source in a fresh session."""
    c = session_from(srv, source)
    if sender != "someone@elsewhere.example":
        c.expect("RSET", 250)
        c.expect(f"MAIL FROM:<{sender}>", 250)
    c.send(f"RCPT TO:<{to}>\r\n".encode())
    code, lines = c.reply()
    c.expect("QUIT", 221)
    return code, lines[-1]


def test_a_new_triplet_waits_for_its_retry_then_passes_and_is_remembered(make_server):
    mport = free_port()
    srv = make_server(greylisting="yes", greylist_delay="2s", metrics_listen=f"127.0.0.1:{mport}")
    assert rcpt(srv, "127.0.0.2", "alice@example.test") == \
        (451, "4.7.1 Greylisted: send it again in 2 seconds (RFC 6647)")
    code, text = rcpt(srv, "127.0.0.2", "alice@example.test")  # too soon
    assert code == 451 and text in ("4.7.1 Greylisted: send it again in 1 seconds (RFC 6647)",
                                    "4.7.1 Greylisted: send it again in 2 seconds (RFC 6647)")
    assert rcpt(srv, "127.0.0.2", "bob@example.test")[0] == 451  # another recipient: another triplet
    time.sleep(2.2)
    with smtplib.SMTP("127.0.0.1", srv.port, source_address=("127.0.0.2", 0)) as client:  # a real client
        client.sendmail("someone@elsewhere.example", ["alice@example.test"], b"Subject: retried\r\n\r\nhi\r\n")
    assert len(srv.maildir_files("alice@example.test")) == 1
    assert rcpt(srv, "127.0.0.2", "alice@example.test")[0] == 250  # remembered
    log = srv.log_text()
    assert "rcpt=<alice@example.test> reply=451 reason=greylisted" in log
    assert "event=greylist_passed" in log and "client=127.0.0.2 sender=<someone@elsewhere.example> " \
        "rcpt=<alice@example.test>" in log
    got = values(mport)
    assert [got[f'postern_greylist_total{{result="{r}"}}'] for r in ("deferred", "passed", "known", "allowed")] \
        == [3, 1, 1, 0]


def test_the_network_counts_not_the_address_and_tagged_senders_are_one(make_server):
    """A sending pool retries from another address of its /24; a mailing list's bounce address
    changes with each message (VERP) - neither starts greylisting again."""
    srv = make_server(greylisting="yes", greylist_delay="1s")
    assert rcpt(srv, "127.0.0.2", "alice@example.test", "list-bounces+123=alice=example.test@lists.example")[0] == 451
    time.sleep(1.2)
    assert rcpt(srv, "127.0.0.3", "alice@example.test", "list-bounces+456=alice=example.test@lists.example")[0] == 250
    assert rcpt(srv, "127.0.0.4", "alice@example.test", "news2024@lists.example")[0] == 451
    assert rcpt(srv, "127.0.0.4", "alice@example.test", "news2025@lists.example")[0] == 451  # digits: one sender
    assert rcpt(srv, "127.0.0.4", "alice@example.test", "other@lists.example")[0] == 451
    time.sleep(1.2)
    assert rcpt(srv, "127.0.0.5", "alice@example.test", "news2026@lists.example")[0] == 250


def test_trusted_clients_and_postmaster_are_never_greylisted(make_server):
    srv = make_server(greylisting="yes", relay_networks="127.0.0.3/32")
    assert rcpt(srv, "127.0.0.2", "postmaster@example.test")[0] == 250  # RFC 5321 4.5.1
    assert rcpt(srv, "127.0.0.3", "alice@example.test")[0] == 250  # relay_networks
    assert rcpt(srv, "127.0.0.2", "nobody@example.test")[0] == 550  # an unknown recipient: 550 first
    assert rcpt(srv, "127.0.0.2", "alice@example.test")[0] == 451
    off = make_server()
    assert rcpt(off, "127.0.0.2", "alice@example.test")[0] == 250  # the default: off


def test_a_network_that_passed_enough_triplets_is_allowed(make_server):
    srv = make_server(greylisting="yes", greylist_delay="1s", greylist_auto_allow="2")
    for to in ("alice@example.test", "bob@example.test"):
        assert rcpt(srv, "127.0.0.2", to)[0] == 451
    time.sleep(1.2)
    for to in ("alice@example.test", "bob@example.test"):
        assert rcpt(srv, "127.0.0.2", to)[0] == 250
    assert rcpt(srv, "127.0.0.9", "alice@example.test", "new@elsewhere.example")[0] == 250  # allowed
    assert rcpt(srv, "127.0.1.2", "alice@example.test", "new@elsewhere.example")[0] == 451  # another network


def test_the_table_outlives_a_restart(make_server):
    srv = make_server(greylisting="yes", greylist_delay="1s")
    assert rcpt(srv, "127.0.0.2", "alice@example.test")[0] == 451
    assert rcpt(srv, "127.0.0.2", "bob@example.test")[0] == 451
    time.sleep(1.2)
    assert rcpt(srv, "127.0.0.2", "alice@example.test")[0] == 250
    srv.stop()
    table = srv.spool_dir / "greylist"
    lines = table.read_text().splitlines()
    assert lines[0] == "postern-greylist 1" and len(lines) == 4  # two triplets and the network
    assert "example" not in table.read_text()  # keys, not addresses
    with table.open("a") as f:
        f.write("not an entry\n")
    srv.start()
    assert "event=greylist_loaded" in srv.log_text() and "entries=3 dropped=1" in srv.log_text()
    assert rcpt(srv, "127.0.0.2", "alice@example.test")[0] == 250  # passed before the restart
    assert rcpt(srv, "127.0.0.2", "bob@example.test")[0] == 250  # its delay ran across the restart
    wait_for(lambda: "event=greylist_passed" in srv.log_text(), what="the pass")


def test_a_reload_changes_the_delay_of_the_triplets_already_seen(make_server):
    from conftest import sighup_and_wait
    srv = make_server(greylisting="yes", greylist_delay="1h")
    assert rcpt(srv, "127.0.0.2", "alice@example.test") == \
        (451, "4.7.1 Greylisted: send it again in 3600 seconds (RFC 6647)")
    conf = srv.conf_path.read_text()
    assert "greylist_delay = 1h" in conf
    srv.conf_path.write_text(conf.replace("greylist_delay = 1h", "greylist_delay = 1s"))
    sighup_and_wait(srv, "reloaded")
    time.sleep(1.1)
    assert rcpt(srv, "127.0.0.2", "alice@example.test")[0] == 250  # its first try counts from before the reload
    assert "keys=greylist_delay" not in srv.log_text()


def test_a_reload_switches_greylisting_on_and_off_keeping_the_table(make_server):
    """greylisting = no -> yes by SIGHUP: the table is read (by a disk thread) and new triplets
    wait; -> no: the table is written to spool_dir/greylist and nothing waits; -> yes again: the
    triplets seen before are remembered; a new greylist_max_entries takes effect the same way."""
    from conftest import sighup_and_wait
    srv = make_server(greylisting="no", greylist_delay="1h")
    assert rcpt(srv, "127.0.0.2", "alice@example.test")[0] == 250

    def reload_with(setting, event):
        conf = srv.conf_path.read_text().splitlines()
        conf = [line for line in conf if not line.startswith(setting.split(" = ")[0] + " = ")] + [setting]
        srv.conf_path.write_text("\n".join(conf) + "\n")
        sighup_and_wait(srv, event)
    reload_with("greylisting = yes", "greylist_on")
    assert rcpt(srv, "127.0.0.2", "alice@example.test")[0] == 451
    reload_with("greylisting = no", "greylist_off")
    assert rcpt(srv, "127.0.0.2", "bob@example.test")[0] == 250
    table = srv.spool_dir / "greylist"
    wait_for(lambda: table.exists() and len(table.read_text().splitlines()) == 2, what="the table written")
    reload_with("greylist_delay = 1s", "reloaded")
    reload_with("greylisting = yes", "greylist_on")
    assert "entries=1 dropped=0" in srv.log_text()
    time.sleep(1.1)
    assert rcpt(srv, "127.0.0.2", "alice@example.test")[0] == 250  # its first try counts from before
    reload_with("greylist_max_entries = 1000", "greylist_on")
    assert "event=greylist_on max_entries=1000" in srv.log_text()
    assert rcpt(srv, "127.0.0.2", "alice@example.test")[0] == 250  # the table went through the resize
    assert rcpt(srv, "127.0.0.2", "bob@example.test")[0] == 451
    assert "keys=greylisting" not in srv.log_text() and "reload_needs_restart" not in srv.log_text()
