#!/usr/bin/python3
"""Writes the seed corpora in fuzz/corpus/<target>/ from hand-written SMTP material: real dialogues,
every smuggling ending, overlong lines, malformed ESMTP parameters, shell/expansion payloads."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "corpus"
SMUGGLE = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r", b"\r\n\x00.\r\n", b"\r\n.\x00\r\n"]
PAYLOADS = [b"$(reboot)", b"`id`", b"${run{/bin/sh}}", b"|/bin/sh", b";rm -rf /", b"../../etc/passwd",
            b"%s%n%x", b"\xff\xfe", b"a" * 300]

addresses = [b"<user@example.com>", b"<>", b"<Postmaster>", b"<\"john doe\"@example.com>", b"<a@[192.0.2.1]>",
             b"<a@[IPv6:2001:db8::1]>", b"<@relay.example:user@example.com>", b"<j\xc3\xb6rg@b\xc3\xbccher.example>",
             b"<a@b@c>", b"<.a@b>", b"<a..b@c>", b"<a@-b.c>", b"<\"unterminated@x>", b"<" + b"a" * 65 + b"@x>"]
addresses += [b"<" + p + b"@example.com>" for p in PAYLOADS] + [b"<a@" + p + b">" for p in PAYLOADS]

commands = [b"EHLO client.example", b"HELO x", b"MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME SMTPUTF8",
            b"MAIL FROM:<a@b> =", b'MAIL FROM:<a@b> "', b'MAIL FROM:<a@b> A"=', b"MAIL FROM:<a@b> SIZE=",
            b"MAIL FROM:<a@b> SIZE=1 SIZE=2", b"RCPT TO:<b@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@x",
            b"RCPT TO:<Postmaster>", b"DATA", b"RSET", b"NOOP x", b"QUIT", b"VRFY a", b"GET / HTTP/1.1",
            b"MAIL FROM:" + b"x" * 600, b"mail from:<a@b>"]
commands += [b"RCPT TO:" + a for a in addresses] + [b"MAIL FROM:" + a for a in addresses]

dialogue = (b"EHLO client.example\r\nMAIL FROM:<s@sender.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
            b"Subject: hi\r\n\r\nhello\r\n..dot\r\n.\r\nQUIT\r\n")
sessions = [dialogue,
            b"HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<nobody@example.test>\r\n"
            b"RCPT TO:<x@nullmx.test>\r\nRCPT TO:<x@elsewhere.example>\r\nDATA\r\nx\r\n.\r\nRSET\r\nQUIT\r\n",
            b"EHLO c\r\nMAIL FROM:<a@b> SIZE=999999\r\nMAIL FROM:<a@b> BOGUS=1\r\nNOOP\r\n" + b"A" * 700 + b"\r\nNOOP\r\n",
            b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n" + b"y" * 5000 + b"\r\n.\r\nQUIT\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"EHLO c\r\nDATA\r\nRCPT TO:<alice@example.test>\r\nQUIT\r\n"]
bdat = b"Subject: b\r\n\r\n.\r\nMAIL FROM:<e@vil>\r\n"
sessions += [b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.test>\r\nBDAT %d\r\n%sBDAT 6 LAST\r\nab\r\n\r\n"
             b"QUIT\r\n" % (len(bdat), bdat),
             b"EHLO c\r\nBDAT 6\r\nQUIT\r\nMAIL FROM:<a@b>\r\nBDAT 6 LAST\r\nRSET\r\nRCPT TO:<alice@example.test>\r\n"
             b"BDAT 3\r\nx\r\rMAIL FROM:<a@b>\r\nBDAT 0 LAST\r\nBDAT x\r\nQUIT\r\n",
             b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.test>\r\nBDAT 5000 LAST\r\n" + b"z" * 5000 + b"NOOP\r\n",
             b"EHLO c\r\nBDAT 6\r\nNOOP\r\nNOOP\r\nMAIL FROM:<a@b>\r\nBDAT 12 LAST\r\nNOOP\r\nNOOP\r\nQUIT\r\n"]
for end in SMUGGLE:
    sessions.append(b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nx" + end +
                    b"MAIL FROM:<e@vil>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nsmuggled\r\n.\r\nQUIT\r\n")

data = [b"\x05Subject: x\r\n\r\nbody\r\n.\r\n", b"\x01.\r\n", b"\x03..stuffed\r\n.\r\nMAIL", b"\x02" + b"z" * 5000 + b"\r\n.\r\n"]
data += [b"\x04a" + e + b"b\r\n.\r\n" for e in SMUGGLE]

configs = [b"hostname = mx.example.test\nlisten = 127.0.0.1:2525, [::1]:2525\nmax_message_size = 10M\n",
           b"# comment\nlocal_domains = a.example b.example,c.example\nrelay_networks = 10.0.0.0/8 ::1/128\n",
           b"max_recipients = lots\nunknown = 1\nlisten = localhost\n", b"accept_mail = maybe\n= x\nnokey\n",
           b"command_timeout = 5m\nshutdown_grace = 1h\nmin_free_space = 1G\n", b"a" * 5000 + b" = 1\n"]

for target, seeds in [("address", addresses), ("command", commands), ("session", sessions), ("data", data),
                      ("config", configs)]:
    d = ROOT / target
    d.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(seeds):
        (d / f"seed-{i:03d}").write_bytes(seed)
