"""The client's confirmed name (client_name_check), through the real binary: libunbound itself
names 127.0.0.1 and ::1 "localhost" (its built-in local zones) and "localhost" leads back to them;
127.0.0.2 has no PTR name. (The same local zones answer every loopback address at once: a DNS
failure, no verdict, cannot be staged over loopback.)"""
import email
import smtplib

from conftest import check_config, free_port, wait_for
from test_dnsbl import session_from
from test_metrics import values


def received_of(srv, source):
    """Sends a message from source to alice@example.test; the Received field of the copy, unfolded."""
    before = len(srv.maildir_files("alice@example.test"))
    with smtplib.SMTP("127.0.0.1", srv.port, source_address=(source, 0), local_hostname="client.example",
                      timeout=20) as c:
        c.sendmail("someone@elsewhere.example", ["alice@example.test"], b"Subject: s\r\n\r\nbody\r\n")
    files = wait_for(lambda: srv.maildir_files("alice@example.test")[before:] or None)
    copy = email.message_from_bytes(files[-1].read_bytes())
    return " ".join(copy["Received"].split())


def test_the_confirmed_name_or_unknown_goes_into_received_and_the_log(make_server):
    mport = free_port()
    srv = make_server(client_name_check="header", metrics_listen=f"127.0.0.1:{mport}")
    assert received_of(srv, "127.0.0.1").startswith("from client.example (localhost [127.0.0.1]) by mx.example.test")
    assert received_of(srv, "127.0.0.2").startswith("from client.example (unknown [127.0.0.2]) by mx.example.test")
    log = srv.log_text()
    assert "client=127.0.0.1 name=localhost result=confirmed" in log
    assert 'client=127.0.0.2 name=unknown result=unconfirmed detail="no PTR name"' in log
    got = values(mport)  # the harness's own readiness probe (from 127.0.0.1) may add a confirmed one
    assert [got[f'postern_client_names_total{{result="{r}"}}'] for r in ("confirmed", "unconfirmed", "temperror")] \
        == [srv.log_text().count("result=confirmed"), 1, 0]
    off = make_server()
    assert received_of(off, "127.0.0.2").startswith("from client.example ([127.0.0.2]) by")  # the default: off
    assert "event=client_name" not in off.log_text()


def test_reject_defers_an_mx_client_without_a_name_but_not_postmaster_or_relay_clients(make_server):
    srv = make_server(client_name_check="reject", relay_networks="127.0.0.3/32", listen="127.0.0.1:{port}, [::1]:{port}")
    c = session_from(srv, "127.0.0.2")
    lines = c.expect("RCPT TO:<alice@example.test>", 450, "4.7.25")
    assert lines[-1] == "4.7.25 Client host [127.0.0.2] rejected: cannot find your hostname"
    c.expect("RCPT TO:<postmaster@example.test>", 250)  # RFC 5321 4.5.1
    c.expect("QUIT", 221)
    for source in ("127.0.0.1", "127.0.0.3", "::1"):  # confirmed names; relay_networks
        c = session_from(srv, source, host="::1" if ":" in source else "127.0.0.1")
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("QUIT", 221)
    log = srv.log_text()
    assert "rcpt=<alice@example.test> reply=450 reason=client_name" in log
    assert "client=::1 name=localhost result=confirmed" in log


def test_a_wrong_value_is_an_error_at_its_line(tmp_path):
    conf = tmp_path / "p.conf"
    conf.write_text("hostname = mx.example.test\nclient_name_check = maybe\n")
    r = check_config(conf)
    assert r.returncode != 0 and f"{conf}:2: client_name_check" in r.stderr, r.stderr
