"""CHUNKING (RFC 3030): BDAT chunks of a stated size make the message - no dots, line endings as
in DATA, one reply per chunk, the last one's only once the message is stored; a refused chunk is
read and dropped, never taken for commands; what may not come between chunks."""
import smtplib

import pytest
from conftest import trickle, wait_for
from test_tls_auth import PASSWORD, client_ctx, pki, tls_server  # noqa: F401 (pki, tls_server: fixtures)


def start_transaction(srv, rcpts=("alice@example.test",)):
    c = srv.connect()
    lines = c.expect("EHLO client.example", 250)
    assert "CHUNKING" in lines
    c.expect("MAIL FROM:<s@sender.example>", 250)
    for r in rcpts:
        c.expect(f"RCPT TO:<{r}>", 250)
    return c


def body_of(srv, address="alice@example.test"):
    [f] = srv.maildir_files(address)
    return f.read_bytes().split(b"\n\n", 1)[1]


def test_one_chunk_is_the_message_as_sent(server):
    """Lines holding a dot are text (no unstuffing, no end); CRLF is stored as LF; 250 queued."""
    c = start_transaction(server)
    text = b"Subject: chunked\r\n\r\n..two dots\r\n.\r\nafter the dot line\r\n"
    c.send(b"BDAT %d LAST\r\n" % len(text) + text)
    code, lines = c.reply()
    assert code == 250 and lines[0].startswith("2.0.0 Ok: queued as "), lines
    assert body_of(server) == b"..two dots\n.\nafter the dot line\n"
    wait_for(lambda: f"size={len(text)} " in server.log_text(), what="the accepted line")  # logged after the 250
    c.expect("QUIT", 221)


def test_pipelined_chunks_and_a_crlf_split_between_them(server):
    """Chunks sent at once get one reply each, in order; a CR ending one chunk and the LF starting
    the next are one line end; BDAT 0 LAST ends the message."""
    c = start_transaction(server)
    parts = [b"Subject: parts\r\n\r\nfirst line\r", b"\nsecond line\r\n", b""]
    c.send(b"BDAT %d\r\n%sBDAT %d\r\n%sBDAT 0 LAST\r\n" % (len(parts[0]), parts[0], len(parts[1]), parts[1]))
    assert c.reply() == (250, [f"2.0.0 {len(parts[0])} octets received"])
    assert c.reply() == (250, [f"2.0.0 {len(parts[1])} octets received"])
    code, lines = c.reply()
    assert code == 250 and "queued as" in lines[0]
    assert body_of(server) == b"first line\nsecond line\n"
    c.expect("NOOP", 250)  # the session goes on: the next transaction
    c.expect("MAIL FROM:<s@sender.example>", 250)
    c.expect("RCPT TO:<bob@example.test>", 250)
    c.expect("DATA", 354)  # DATA again after a BDAT transaction
    c.send(b"Subject: after\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250


def test_text_without_a_final_line_end_gets_one(server):
    c = start_transaction(server)
    text = b"Subject: x\r\n\r\nno end"
    c.send(b"BDAT %d LAST\r\n" % len(text) + text)
    assert c.reply()[0] == 250
    assert body_of(server) == b"no end\n"


def test_a_refused_chunk_is_read_and_dropped_never_run(server):
    """BDAT with no transaction (503), or with no recipient (554), is refused - and its octets,
    here commands, are read and dropped: the session goes on after them."""
    c = server.connect()
    c.expect("EHLO client.example", 250)
    c.send(b"BDAT 6\r\nQUIT\r\n")
    assert c.reply() == (503, ["5.5.1 Bad sequence of commands: send MAIL first"])
    c.expect("NOOP", 250)
    c.expect("MAIL FROM:<s@sender.example>", 250)
    c.send(b"BDAT 12 LAST\r\nRSET\r\nQUIT\r\n")
    assert c.reply() == (554, ["5.5.1 No valid recipients"])
    c.expect("RCPT TO:<alice@example.test>", 250)  # the transaction is still open: RSET was text
    c.send(b"BDAT 8 LAST\r\nx: y\r\n\r\n")
    assert c.reply()[0] == 250
    assert len(server.maildir_files("alice@example.test")) == 1


def test_before_ehlo_a_chunk_is_dropped_too(server):
    c = server.connect()
    c.send(b"BDAT 8\r\nHELO x\r\n")
    assert c.reply()[0] == 503
    c.expect("NOOP", 250)
    assert not c.closed(timeout=0.3)


def test_a_chunk_over_the_size_limit_is_refused_at_once(make_server):
    """552 as soon as the stated size passes max_message_size (its octets dropped); the transaction
    is over: the next chunk gets 503."""
    srv = make_server(max_message_size=1024)
    c = start_transaction(srv)
    c.send(b"BDAT 600\r\n" + b"a" * 598 + b"\r\n")
    assert c.reply() == (250, ["2.0.0 600 octets received"])
    c.send(b"BDAT 500 LAST\r\n" + b"b" * 498 + b"\r\n")
    assert c.reply() == (552, ["5.3.4 Message size exceeds fixed maximum message size"])
    c.send(b"BDAT 5 LAST\r\nabc\r\n")
    assert c.reply()[0] == 503
    c.expect("NOOP", 250)
    assert srv.all_delivered() == []
    wait_for(lambda: "event=rejected" in srv.log_text() and "too big" in srv.log_text(), what="the refusal logged")


@pytest.mark.parametrize("text", [b"Subject: x\r\n\r\nbare\nLF\r\n", b"Subject: x\r\n\r\nends in CR\r"])
def test_bare_line_endings_refuse_the_message_whole(server, text):
    c = start_transaction(server)
    c.send(b"BDAT %d LAST\r\n" % len(text) + text)
    assert c.reply()[0] == 550
    c.expect("NOOP", 250)
    assert server.all_delivered() == []


def test_a_bad_chunk_refuses_at_its_end_and_the_rest_are_dropped(server):
    """A NUL in a non-last chunk: the message is refused when that chunk ends (550 5.6.0), the
    chunks the client had already pipelined get 503, their octets dropped."""
    c = start_transaction(server)
    bad = b"Subject: x\r\n\r\nnul\x00here\r\n"
    c.send(b"BDAT %d\r\n%sBDAT 6 LAST\r\nQUIT\r\n" % (len(bad), bad))
    assert c.reply() == (550, ["5.6.0 Message rejected: NUL character in data"])
    assert c.reply()[0] == 503
    c.expect("NOOP", 250)
    assert server.all_delivered() == []


def test_what_may_come_between_chunks(server):
    """MAIL, RCPT, DATA wait for the last chunk (503 BDAT in progress); NOOP may come; RSET drops
    the message; nothing is stored."""
    c = start_transaction(server)
    c.send(b"BDAT 4\r\nab\r\n")
    assert c.reply()[0] == 250
    for cmd in ("MAIL FROM:<t@sender.example>", "RCPT TO:<bob@example.test>", "DATA"):
        c.expect(cmd, 503, "BDAT in progress")
    c.expect("NOOP", 250)
    c.expect("RSET", 250)
    c.send(b"BDAT 4 LAST\r\nab\r\n")
    assert c.reply()[1] == ["5.5.1 Bad sequence of commands: send MAIL first"]
    assert server.all_delivered() == []
    c.expect("HELP", 214, "BDAT")


@pytest.mark.parametrize("arg", ["", " abc", " 5 LATE", " 5  LAST", " -1", " 99999999999999999999999"])
def test_a_size_that_cannot_be_read_closes_the_session(server, arg):
    """Without a readable size the chunk's end is unknown: 501 and the connection closes rather
    than read message text as commands."""
    c = start_transaction(server)
    c.send(f"BDAT{arg}\r\nQUIT\r\n")
    assert c.reply() == (501, ["5.5.4 Syntax: BDAT <octets> [LAST]; closing connection"])
    assert c.closed()
    assert server.all_delivered() == []


def test_client_gone_in_a_chunk_stores_nothing(server):
    c = start_transaction(server)
    c.send(b"BDAT 1000 LAST\r\nSubject: x\r\n\r\nonly part of it")
    c.close()
    wait_for(lambda: "event=lost_during_data" in server.log_text(), what="the lost session logged")
    assert server.all_delivered() == []
    c = start_transaction(server)  # the server goes on
    c.send(b"BDAT 8 LAST\r\nx: y\r\n\r\n")
    assert c.reply()[0] == 250


def test_a_refused_chunk_trickled_in_times_out(make_server):
    """The octets of a refused chunk are dropped, but no slower than a command may come: a chunk
    trickled in (one byte every half second) ends the session after command_timeout (421)."""
    srv = make_server(command_timeout="2s")
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.send(b"BDAT 100\r\n")
    assert c.reply()[0] == 503
    took = trickle(c, b"x" * 20)
    assert c.buf.startswith(b"421 4.4.2"), c.buf
    assert 1.5 < took < 6


def test_chunks_over_starttls_after_auth_on_the_submission_port(tls_server, pki):  # noqa: F811
    """smtplib's STARTTLS and AUTH, then the message in two BDAT chunks through the TLS layer: the
    chunks are read from the decrypted stream exactly as from the plain one, and the message is
    stored like a DATA one (Received: with ESMTPSA, over TLS)."""
    srv = tls_server(relay_networks="")
    with smtplib.SMTP("127.0.0.1", srv.sub_port, timeout=20) as s:
        s.ehlo("client.example")
        s.starttls(context=client_ctx(pki))
        s.ehlo("client.example")
        assert s.has_extn("chunking")
        s.login("alice@example.test", PASSWORD)
        assert s.mail("alice@example.test")[0] == 250 and s.rcpt("bob@example.test")[0] == 250
        first, last = b"Subject: over TLS\r\n\r\nfirst half,", b" second half\r\n"
        s.send(b"BDAT %d\r\n%s" % (len(first), first))
        assert s.getreply() == (250, b"2.0.0 %d octets received" % len(first))
        s.send(b"BDAT %d LAST\r\n%s" % (len(last), last))
        code, text = s.getreply()
        assert code == 250 and text.startswith(b"2.0.0 Ok: queued as"), text
    [f] = srv.maildir_files("bob@example.test")
    stored = f.read_bytes()
    assert b"with ESMTPSA id" in stored and b"(using TLSv1.3 with cipher TLS_" in stored
    assert stored.endswith(b"\n\nfirst half, second half\n")
