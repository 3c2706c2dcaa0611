"""helo_name_check through the real binary: an MX client introducing itself with a name that is no
fully-qualified domain name or address literal gets 504 5.5.2 at each RCPT (not postmaster's);
trusted clients and the default (off) are not checked."""
from conftest import Client


def rcpt_after(srv, helo, to="alice@example.test", source="127.0.0.2"):
    c = Client(srv.port, source=source)
    assert c.reply()[0] == 220
    c.expect(f"EHLO {helo}", 250)
    c.expect("MAIL FROM:<someone@elsewhere.example>", 250)
    c.send(f"RCPT TO:<{to}>\r\n")
    code, lines = c.reply()
    c.expect("QUIT", 221)
    return code, lines[-1]


def test_a_name_that_is_no_fqdn_is_refused_at_rcpt(make_server):
    srv = make_server(helo_name_check="yes", relay_networks="127.0.0.3/32")
    assert rcpt_after(srv, "user-pc") == (504, "5.5.2 <user-pc>: Helo command rejected: need fully-qualified hostname")
    for helo in ("192.0.2.1", "bad_name.example", "localhost"):
        assert rcpt_after(srv, helo)[0] == 504, helo
    for helo in ("mail.example.org", "[127.0.0.2]", "mx1.example.net."):
        assert rcpt_after(srv, helo)[0] == 250, helo
    assert rcpt_after(srv, "user-pc", to="postmaster@example.test")[0] == 250  # RFC 5321 4.5.1
    assert rcpt_after(srv, "user-pc", source="127.0.0.3")[0] == 250  # relay_networks
    assert "rcpt=<alice@example.test> reply=504 reason=helo_name" in srv.log_text()
    off = make_server()
    assert rcpt_after(off, "user-pc")[0] == 250  # the default: off
