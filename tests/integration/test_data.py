"""DATA: 354, end only at CRLF.CRLF, dot-unstuffing, smuggling refused whole, size limit,
trace headers, durability at the moment of 250, concurrency, and a real client (swaks)."""
import email
import shutil
import smtplib
import subprocess
import threading

import pytest
from conftest import wait_for

SMUGGLE_ENDINGS = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r", b"\r\n\x00.\r\n", b"\r\n.\x00\r\n",
                   b"\n\n.\n\n"]


def start_data(srv, rcpts=("alice@example.test",)):
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<s@sender.example>", 250)
    for r in rcpts:
        c.expect(f"RCPT TO:<{r}>", 250)
    c.expect("DATA", 354, "End data with <CR><LF>.<CR><LF>")
    return c


def test_354_and_dot_unstuffing(server):
    c = start_data(server)
    c.send(b"Subject: dots\r\n\r\n..leading dot\r\n...two\r\n.\r\n")
    code, lines = c.reply()
    assert code == 250 and lines[0].startswith("2.0.0 Ok: queued as ")
    [f] = server.maildir_files("alice@example.test")
    body = f.read_bytes().split(b"\n\n", 1)[1]
    assert body == b".leading dot\n..two\n"


def test_trace_headers(server):
    c = start_data(server)
    c.send(b"Subject: trace\r\n\r\nx\r\n.\r\n")
    qid = c.reply()[1][0].split()[-1]
    msg = email.message_from_bytes(server.maildir_files("alice@example.test")[0].read_bytes())
    assert msg["Return-Path"] == "<s@sender.example>"
    received = " ".join(msg["Received"].split())
    assert received.startswith("from client.example ([127.0.0.1]) by mx.example.test (Postern) with ESMTP id " + qid)
    assert "for <alice@example.test>;" in received
    assert msg["Subject"] == "trace"


ODD_EHLO = [
    ("[127.0.0.1]", "from [127.0.0.1] ([127.0.0.1])"),  # an address literal: as usual
    ("127.0.0.1", "from 127.0.0.1 ([127.0.0.1])"),  # all-digit labels are domain syntax
    ("my_pc", "from [127.0.0.1] (helo=my_pc)"),
    ("x;by.forged.example", "from [127.0.0.1] (helo=x;by.forged.example)"),  # ';' would end the clauses
    ("a(b)c\\d", "from [127.0.0.1] (helo=a\\(b\\)c\\\\d)"),  # quoted in the comment
    ("h\u00f6st.example", "from xn--hst-sna.example ([127.0.0.1])"),  # outside SMTPUTF8: its A-label
    ("h\u00f6_st.example", "from [127.0.0.1] (helo=h??_st.example)"),  # no domain: 8-bit octets as '?'
]


def test_received_names_an_odd_ehlo_in_a_comment(server):
    # RFC 5321 4.4: "from" names a domain or address literal; EHLO takes any token, as most
    # servers do, so the Received field must stay parseable whatever the client said
    for n, (helo, expected) in enumerate(ODD_EHLO):
        c = server.connect()
        c.expect(f"EHLO {helo}", 250)
        c.expect("MAIL FROM:<s@sender.example>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("DATA", 354)
        c.expect(f"Subject: odd {n}\r\n\r\nx\r\n.", 250)
        c.expect("QUIT", 221)
    texts = {}
    for f in server.maildir_files("alice@example.test"):
        text = f.read_bytes().decode("utf-8")
        texts[int(text.split("Subject: odd ")[1].split("\n")[0])] = text
    for n, (helo, expected) in enumerate(ODD_EHLO):
        assert texts[n].split("\n")[1] == "Received: " + expected, texts[n]


def test_received_has_no_for_clause_with_several_recipients(server):
    c = start_data(server, ("alice@example.test", "bob@example.test"))
    c.send(b"Subject: two\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    a = server.maildir_files("alice@example.test")[0].read_bytes()
    b = server.maildir_files("bob@example.test")[0].read_bytes()
    assert a == b and b"for <" not in a


@pytest.mark.parametrize("ending", SMUGGLE_ENDINGS, ids=[repr(e) for e in SMUGGLE_ENDINGS])
def test_smuggling_endings_never_end_data(server, ending):
    c = start_data(server)
    # if `ending` ended the data, the smuggled transaction would get its own replies
    c.send(b"Subject: x\r\n\r\nhello" + ending + b"MAIL FROM:<evil@attacker.example>\r\n"
           b"RCPT TO:<bob@example.test>\r\nDATA\r\nsmuggled\r\n.\r\nNOOP\r\n")
    code, lines = c.reply()
    assert code == 550 and ("5.5.2" in lines[0] or "5.6.0" in lines[0]), lines
    # the NOOP pipelined after the real end is the next command: exactly one more reply, a 250;
    # the smuggled MAIL/RCPT/DATA were message text, so no 250/354 for them ever comes
    assert c.reply()[0] == 250
    c.expect("NOOP", 250)
    assert server.all_delivered() == []


def test_bare_cr_before_a_real_end_refuses_only_that_message(server):
    """b"\\r\\r\\n.\\r\\n" holds a real CRLF.CRLF: the data ends there (refused for its bare CR)
    and what follows is a genuine next transaction of the same client, answered in order."""
    c = start_data(server)
    c.send(b"Subject: x\r\n\r\nhello\r\r\n.\r\nMAIL FROM:<s@sender.example>\r\n"
           b"RCPT TO:<bob@example.test>\r\nDATA\r\nnext\r\n.\r\nNOOP\r\n")
    code, lines = c.reply()
    assert code == 550 and "5.5.2" in lines[0], lines
    assert [c.reply()[0] for _ in range(5)] == [250, 250, 354, 250, 250]
    assert len(server.maildir_files("bob@example.test")) == 1
    assert server.maildir_files("alice@example.test") == []


def test_bare_lf_message_refused_whole_and_session_continues(server):
    c = start_data(server)
    c.send(b"line one\nline two\r\n.\r\n")
    code, lines = c.reply()
    assert code == 550 and "5.5.2" in lines[0]
    c.expect("MAIL FROM:<s@sender.example>", 250)
    c.expect("RCPT TO:<alice@example.test>", 250)
    c.expect("DATA", 354)
    c.expect("clean\r\n.", 250)
    assert len(server.all_delivered()) == 1


def test_message_over_max_size_552_nothing_stored(make_server):
    srv = make_server(max_message_size=2048)
    c = start_data(srv)
    c.send(b"Subject: big\r\n\r\n" + b"x" * 70 + b"\r\n")
    c.send((b"y" * 998 + b"\r\n") * 50)
    c.send(b".\r\n")
    code, lines = c.reply()
    assert code == 552 and "5.3.4" in lines[0]
    assert srv.all_delivered() == []
    c.expect("NOOP", 250)


def test_message_exactly_at_limit_accepted(make_server):
    srv = make_server(max_message_size=1024)
    c = start_data(srv)
    c.send(b"a" * 1022 + b"\r\n.\r\n")  # 1024 octets counting CRLF
    assert c.reply()[0] == 250


def test_maildir_file_exists_when_250_arrives(server):
    c = start_data(server)
    for i in range(20):
        c.send(b"Subject: durable %d\r\n\r\nbody\r\n.\r\n" % i)
        code, lines = c.reply()
        assert code == 250
        qid = lines[0].split()[-1]
        # checked the instant the reply is read: the file is already in new/, not tmp/
        names = [p.name for p in server.maildir_files("alice@example.test")]
        assert any(qid in n for n in names), (qid, names)
        c.expect("MAIL FROM:<s@sender.example>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("DATA", 354)
    tmp = server.mail_dir / "example.test" / "alice" / "tmp"
    assert list(tmp.iterdir()) == []


def test_each_250_is_followed_by_its_log_line(server):
    """The 250 goes out first and the transaction's log line right after it: the line must still
    come, once per message, with that message's queue id, reply code, sender and recipient."""
    c = start_data(server)
    qids = []
    msgids = [b"Message-ID: <m0@client.example>\r\n", b"Message-id:\r\n <m1 x@client.example>\r\n", b""]
    for i in range(3):
        c.send(b"Subject: logged %d\r\n%s\r\nbody\r\n.\r\n" % (i, msgids[i]))
        code, lines = c.reply()
        assert code == 250
        qids.append(lines[0].split()[-1])
        if i < 2:
            c.expect("MAIL FROM:<s@sender.example>", 250)
            c.expect("RCPT TO:<alice@example.test>", 250)
            c.expect("DATA", 354)
    c.expect("QUIT", 221)
    for qid, msgid in zip(qids, [" message_id=<m0@client.example>", " message_id=<m1?x@client.example>", None]):
        line = wait_for(lambda: next((l for l in server.log_text().splitlines() if f"qid={qid} " in l
                                      and "event=accepted " in l), None), 5, f"the log line of {qid}")
        assert "sender=<s@sender.example>" in line and "alice@example.test" in line and "reply=250" in line
        assert (msgid in line) if msgid else "message_id=" not in line  # for tracing a message by its id
    assert server.log_text().count("event=accepted ") == 3


def test_quoted_local_part_cannot_forge_log_fields(server):
    """RFC 5321 allows spaces in a quoted local part; in the log line every value stays one word."""
    c = start_data(server, rcpts=['"x reply=554 qid=FAKE"@catchall.test'])
    c.send(b"Subject: q\r\n\r\nbody\r\n.\r\n")
    assert c.reply()[0] == 250
    line = wait_for(lambda: next((l for l in server.log_text().splitlines() if "event=accepted " in l), None), 5,
                    "the accepted line")
    assert 'rcpts=<"x?reply=554?qid=FAKE"@catchall.test>' in line and line.count(" qid=") == 1


def test_client_gone_during_commit_gets_no_reply_on_another_connection(server):
    """A client that hangs up while its message commits: no reply meant for it may land on a newer
    connection, which may be given the same socket number (each newcomer's first reply is its 220,
    its NOOP gets the NOOP's 250), and its message was complete, so every one is stored and logged."""
    n = 40
    for i in range(n):
        gone = server.connect()
        gone.send(b"EHLO c.example\r\nMAIL FROM:<s@sender.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        assert [gone.reply()[0] for _ in range(4)] == [250, 250, 250, 354]
        gone.send(b"Subject: gone %d\r\n\r\nx\r\n.\r\n" % i)
        gone.close()
        newcomer = server.connect(greet=False)
        code, lines = newcomer.reply()
        assert code == 220, lines
        assert newcomer.expect("NOOP", 250) == ["2.0.0 Ok"]
        newcomer.close()
    wait_for(lambda: len(server.maildir_files("alice@example.test")) == n, 10, f"{n} messages stored")
    wait_for(lambda: server.log_text().count("event=accepted") == n, 5, f"{n} accepted log lines")


def test_body_and_commands_in_one_write(server):
    c = server.connect()
    c.send(b"EHLO c.example\r\nMAIL FROM:<s@sender.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
           b"MAIL FROM:<not@a.command>\r\n.\r\nQUIT\r\n")
    codes = [c.reply()[0] for _ in range(6)]
    assert codes == [250, 250, 250, 354, 250, 221]
    body = server.maildir_files("alice@example.test")[0].read_bytes()
    assert body.endswith(b"\n\nMAIL FROM:<not@a.command>\n") or body.endswith(b"MAIL FROM:<not@a.command>\n")


def test_fifty_parallel_sessions_four_messages_each(make_server):
    server = make_server(max_connections_per_ip=100)  # the harness's start-up probe may still count
    errors = []

    def worker(n):
        try:
            with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as s:
                s.ehlo(f"client{n}.example")
                for m in range(4):
                    rcpt = "alice@example.test" if (n + m) % 2 else "bob@example.test"
                    s.sendmail("load@sender.example", [rcpt], f"Subject: {n}-{m}\r\n\r\nload\r\n".encode())
        except Exception as e:  # collected and asserted below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    files = server.all_delivered()
    assert len(files) == 200
    subjects = {email.message_from_bytes(f.read_bytes())["Subject"] for f in files}
    assert subjects == {f"{n}-{m}" for n in range(50) for m in range(4)}


def test_client_disconnect_mid_data_stores_nothing(server):
    c = start_data(server)
    c.send(b"Subject: cut\r\n\r\npartial")
    c.close()
    c2 = server.connect()
    c2.expect("NOOP", 250)
    assert server.all_delivered() == []


@pytest.mark.skipif(not shutil.which("swaks"), reason="swaks is installed by scripts/deps.sh")
def test_swaks_delivers(server):
    out = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(server.port), "--from",
                          "sender@example.org", "--to", "bob@example.test", "--header", "Subject: via swaks",
                          "--body", "Hello from swaks"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "<-  250 2.0.0 Ok: queued as" in out.stdout
    [f] = server.maildir_files("bob@example.test")
    msg = email.message_from_bytes(f.read_bytes())
    assert msg["Subject"] == "via swaks" and "Hello from swaks" in msg.get_payload()
