"""SPF (RFC 7208) at MAIL through the real binary: the test DNS server (conftest.py) publishes
records for each kind of term and each result; the client is 127.0.0.1. spf_policy = reject refuses
a fail with 550 5.7.23 at each RCPT but postmaster's; header (and reject) record every result in a
Received-SPF field above the Received field; relay_networks clients are not checked."""
import re
import socket
import struct
import subprocess
import threading
import time

from conftest import BIN, Client, wait_for

# sender domain -> the result check_host() gives for 127.0.0.1 (carol@ for spf-exists.test)
RESULTS = {
    "spf-pass.test": "pass", "spf-fail.test": "fail", "spf-soft.test": "softfail", "spf-neutral.test": "neutral",
    "spf-mx.test": "pass", "spf-a.test": "pass", "spf-include.test": "pass", "spf-redirect.test": "fail",
    "spf-exists.test": "pass", "spf-ptr.test": "fail", "spf-ptr-other.test": "neutral",
    "spf-syntax.test": "permerror", "spf-two.test": "permerror",
    "spf-loop.test": "permerror", "spf-void.test": "permerror", "spf-deadinclude.test": "temperror",
    "servfail.test": "temperror", "two-mx.test": "none", "spf-split.test": "pass",
}


def test_each_kind_of_record_gives_its_result_and_reject_refuses_a_fail(make_server):
    srv = make_server(spf_policy="reject", spf_skip_networks="127.0.0.3/32, ::1")
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    for domain, result in RESULTS.items():
        c.expect(f"MAIL FROM:<carol@{domain}>", 250)
        if result == "fail":  # refused at each RCPT, but postmaster's (RFC 5321 4.5.1)
            c.expect("RCPT TO:<alice@example.test>", 550,
                     f"5.7.23 SPF validation failed: {domain} does not allow mail from [127.0.0.1]")
            c.expect("RCPT TO:<postmaster@example.test>", 250)
        else:
            c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("RSET", 250)
    c.expect("MAIL FROM:<dave@spf-exists.test>", 250)  # %{l} differs: no record exists
    c.expect("RCPT TO:<alice@example.test>", 550, "5.7.23")
    c.expect("RSET", 250)
    c.expect("EHLO localhost", 250)  # ptr:%{h}: 127.0.0.1's PTR name, localhost, is within it now
    c.expect("MAIL FROM:<carol@spf-ptr.test>", 250)
    log = srv.log_text()
    assert "identity=carol@spf-ptr.test result=pass detail=\"ptr:%{h} matched in spf-ptr.test\"" in log
    skipped = Client(srv.port, source="127.0.0.3")  # spf_skip_networks: a backup MX passing others' mail on
    assert skipped.reply()[0] == 220
    skipped.expect("EHLO backup-mx.example", 250)
    skipped.expect("MAIL FROM:<carol@spf-fail.test>", 250)
    skipped.expect("QUIT", 221)
    assert srv.log_text().count("identity=carol@spf-fail.test ") == 1
    for domain, result in RESULTS.items():
        assert f"identity=carol@{domain} result={result} " in log, (domain, result)
    assert re.search(r"identity=carol@spf-loop.test result=permerror detail=\"more than 10 DNS-querying terms", log)
    assert re.search(r"identity=carol@spf-void.test result=permerror detail=\"more than 2 lookups found nothing", log)


def test_received_spf_field_above_received_and_relay_clients_unchecked(make_server):
    srv = make_server(spf_policy="header", relay_networks="127.0.0.2/32")
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    for sender in ("carol@spf-fail.test", ""):
        c.expect(f"MAIL FROM:<{sender}>", 250)  # header: a fail is only recorded
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: spf\r\n\r\nbody\r\n.\r\n")
        assert c.reply()[0] == 250
    c.expect("EHLO spf-pass.test", 250)  # the null sender: the HELO name is checked
    c.expect("MAIL FROM:<>", 250)
    c.expect("RCPT TO:<alice@example.test>", 250)
    c.expect("DATA", 354)
    c.send(b"Subject: spf\r\n\r\nbody\r\n.\r\n")
    assert c.reply()[0] == 250
    files = wait_for(lambda: len(srv.maildir_files("alice@example.test")) == 3
                     and srv.maildir_files("alice@example.test"))
    texts = {("fail" if "<carol@" in t else "helo" if "spf-pass" in t else "none"): t
             for t in (f.read_text() for f in files)}
    fail = texts["fail"]
    assert fail.startswith(
        "Return-Path: <carol@spf-fail.test>\nReceived-SPF: fail (mx.example.test: domain of carol@spf-fail.test "
        "does not designate 127.0.0.1 as permitted sender)\n\tclient-ip=127.0.0.1; "
        "envelope-from=\"carol@spf-fail.test\";\n\thelo=\"client.example\"; receiver=mx.example.test; "
        "identity=mailfrom;\nReceived: from client.example")
    assert ("Received-SPF: none (mx.example.test: domain of postmaster@client.example does not designate "
            "permitted sender hosts)\n\tclient-ip=127.0.0.1; envelope-from=\"\";") in texts["none"]
    assert ("Received-SPF: pass (mx.example.test: domain of postmaster@spf-pass.test designates 127.0.0.1"
            in texts["helo"])
    assert "identity=helo;" in texts["helo"]
    relayed = Client(srv.port, source="127.0.0.2")
    assert relayed.reply()[0] == 220
    relayed.expect("EHLO client.example", 250)
    relayed.expect("MAIL FROM:<carol@spf-fail.test>", 250)
    relayed.expect("QUIT", 221)
    assert srv.log_text().count("event=spf ") == 3


def test_no_answer_within_dns_timeout_is_a_temperror_and_the_mail_goes_on(make_server, silent_resolver):
    srv = make_server(dns_resolver=silent_resolver, dns_timeout="1s", sender_null_mx_check="no",
                      spf_policy="reject")
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    start = time.monotonic()
    c.expect("MAIL FROM:<carol@spf-fail.test>", 250)
    assert 0.9 < time.monotonic() - start < 5
    assert ("identity=carol@spf-fail.test result=temperror detail=\"no answer within dns_timeout (1s)\""
            in srv.log_text())


def test_spf_command_tells_what_mail_from_an_address_gets(make_server):
    """postern spf CLIENT-IP SENDER [HELO]: check_host() as at MAIL, with the configured resolver -
    IPv6 clients (ip6, and %{i} as reversed nibbles), an IPv4-mapped address taken as IPv4, the
    null sender by its HELO name."""
    srv = make_server(spf_policy="reject")

    def spf(*args):
        return subprocess.run([str(BIN), "-c", str(srv.conf_path), "spf", *args], capture_output=True, text=True)
    r = spf("127.0.0.1", "carol@spf-pass.test")
    assert r.returncode == 0 and r.stdout == (
        "carol@spf-pass.test from 127.0.0.1 (identity mailfrom): pass\n  ip4:127.0.0.0/24 matched in spf-pass.test\n")
    r = spf("127.0.0.1", "carol@spf-fail.test")
    assert r.returncode == 1 and (": fail\n  -all matched in spf-fail.test\n"
                                  "  spf_policy = reject: each RCPT but postmaster's gets 550 5.7.23") in r.stdout
    assert "pass\n  exists:%{ir}.%{v}.x.spf-v6.test matched" in spf("::1", "carol@spf-v6.test").stdout
    assert "pass\n  ip6:2001:db8::/32 matched" in spf("2001:db8::5", "carol@spf-v6.test").stdout
    assert ": fail\n" in spf("2001:db9::5", "carol@spf-v6.test").stdout
    assert ": pass\n" in spf("::ffff:127.0.0.1", "carol@spf-pass.test").stdout
    r = spf("127.0.0.1", "<>", "spf-pass.test")
    assert r.returncode == 0 and "postmaster@spf-pass.test from 127.0.0.1 (identity helo): pass" in r.stdout
    assert spf("not-an-ip", "carol@spf-pass.test").returncode == 2
    r = spf("127.0.0.1", "carol@spf-pass.test", "spf-fail.test")  # as at MAIL: the HELO name first
    assert r.returncode == 1 and r.stdout.startswith("postmaster@spf-fail.test from 127.0.0.1 (identity helo): fail")
    assert r.stdout.endswith("the HELO name's fail decides: carol@spf-pass.test is not asked\n")
    r = spf("127.0.0.1", "carol@spf-pass.test", "client.example")
    assert r.returncode == 0 and "(identity helo): none" in r.stdout and "(identity mailfrom): pass" in r.stdout


def test_a_fail_gives_the_domains_own_explanation_from_exp(make_server):
    """RFC 7208 6.2: a fail by a record with exp= quotes the TXT record it names (its strings joined,
    its macros expanded, c r and t too) after the usual text; the record a redirect= left, an
    included record, two TXT records or one that does not expand give none. The log and postern spf
    show it too."""
    srv = make_server(spf_policy="reject")
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    why = ("127.0.0.1 is not a server of spf-exp.test, see https://spf-exp.test/spf?from=carol%40{d}"
           " (127.0.0.1 at mx.example.test)")
    for domain, said_by in [("spf-exp.test", "spf-exp.test"), ("spf-exp-via.test", "spf-exp.test")]:
        c.expect(f"MAIL FROM:<carol@{domain}>", 250)
        c.expect("RCPT TO:<alice@example.test>", 550,
                 f"5.7.23 SPF validation failed: {domain} does not allow mail from [127.0.0.1]; "
                 f"{domain} explains: {why.format(d=domain)}")
        c.expect("RSET", 250)
    for domain in ("spf-exp-left.test", "spf-exp-inc.test", "spf-exp-two.test", "spf-exp-bad.test"):
        c.expect(f"MAIL FROM:<carol@{domain}>", 250)
        c.send(b"RCPT TO:<alice@example.test>\r\n")
        code, lines = c.reply()
        assert code == 550 and lines[-1].endswith(f"{domain} does not allow mail from [127.0.0.1]"), lines
        c.expect("RSET", 250)
    c.expect("QUIT", 221)
    log = srv.log_text()
    assert f'identity=carol@spf-exp.test result=fail detail="-all matched in spf-exp.test" explanation="{why.format(d="spf-exp.test")}"' in log
    assert "identity=carol@spf-exp-two.test result=fail detail=\"-all matched in spf-exp-two.test\"\n" in log
    r = subprocess.run([str(BIN), "-c", str(srv.conf_path), "spf", "127.0.0.1", "carol@spf-exp.test"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and f"  the domain explains (exp=): {why.format(d='spf-exp.test')}\n" in r.stdout


def scripted_dns(records, silent):
    """A DNS server on loopback for dns_resolver: TXT records from `records` (name -> text), no
    answer at all for a name in `silent`, NXDOMAIN for the rest. Returns (address, stop)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    done = threading.Event()

    def serve():
        while not done.is_set():
            try:
                query, peer = sock.recvfrom(4096)
            except socket.timeout:
                continue
            labels, i = [], 12
            while query[i]:
                labels.append(query[i + 1:i + 1 + query[i]].decode().lower())
                i += 1 + query[i]
            question, name = query[12:i + 5], ".".join(labels)
            if name in silent:
                continue
            text = records.get(name)
            answer = b""
            if text is not None and struct.unpack("!H", query[i + 1:i + 3])[0] == 16:
                rdata = bytes([len(text)]) + text.encode()
                answer = b"\xc0\x0c" + struct.pack("!HHIH", 16, 1, 60, len(rdata)) + rdata
            flags = 0x8180 | (0 if text is not None else 3)  # QR RD RA; NXDOMAIN for an unknown name
            sock.sendto(query[:2] + struct.pack("!HHHHH", flags, 1, 1 if answer else 0, 0, 0) + question + answer, peer)
    t = threading.Thread(target=serve, daemon=True)
    t.start()

    def stop():
        done.set()
        t.join()
        sock.close()
    return f"127.0.0.1@{sock.getsockname()[1]}", stop


def test_an_explanation_too_late_leaves_the_fail_standing(make_server):
    """RFC 7208 6.2: the exp= lookup never changes the result - one that gets no answer within
    dns_timeout leaves the fail, refused without an explanation (not a temperror that lets the
    mail in); postern spf says fail too."""
    address, stop = scripted_dns({"slow-exp.test": "v=spf1 ip4:192.0.2.1 exp=why.slow-exp.test -all"},
                                 {"why.slow-exp.test"})
    try:
        srv = make_server(dns_resolver=address, dns_timeout="1s", sender_null_mx_check="no", spf_policy="reject")
        c = srv.connect()
        c.expect("EHLO client.example", 250)
        c.expect("MAIL FROM:<carol@slow-exp.test>", 250)
        c.expect("RCPT TO:<alice@example.test>", 550,
                 "5.7.23 SPF validation failed: slow-exp.test does not allow mail from [127.0.0.1]")
        c.expect("QUIT", 221)
        assert 'identity=carol@slow-exp.test result=fail detail="-all matched in slow-exp.test"\n' in srv.log_text()
        r = subprocess.run([str(BIN), "-c", str(srv.conf_path), "spf", "127.0.0.1", "carol@slow-exp.test"],
                           capture_output=True, text=True)
        assert r.returncode == 1 and ": fail\n  -all matched in slow-exp.test\n" in r.stdout, r.stdout
    finally:
        stop()


def test_helo_name_is_checked_first_and_its_fail_decides(make_server):
    """RFC 7208 2.3: the HELO name is checked (once per name and session) before the sender; its
    fail is decisive - refused under reject, the sender not asked; otherwise the sender's check
    decides."""
    srv = make_server(spf_policy="reject")
    c = srv.connect()
    c.expect("EHLO spf-fail.test", 250)
    for sender in ("carol@spf-pass.test", "dave@spf-pass.test"):
        c.expect(f"MAIL FROM:<{sender}>", 250)
        c.expect("RCPT TO:<alice@example.test>", 550,
                 "5.7.23 SPF validation failed: spf-fail.test does not allow mail from [127.0.0.1]")
        c.expect("RCPT TO:<postmaster@example.test>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: spf\r\n\r\nbody\r\n.\r\n")
        assert c.reply()[0] == 250
    text = wait_for(lambda: srv.maildir_files("postmaster@example.test"))[0].read_text()
    assert "Received-SPF: fail (mx.example.test: domain of postmaster@spf-fail.test does not designate " in text
    assert "identity=helo;" in text
    c.expect("EHLO spf-pass.test", 250)  # a passing HELO name: the sender's check decides
    c.expect("MAIL FROM:<carol@spf-fail.test>", 250)
    c.expect("RCPT TO:<alice@example.test>", 550, "5.7.23 SPF validation failed: spf-fail.test does not allow")
    c.expect("RSET", 250)
    c.expect("MAIL FROM:<carol@spf-pass.test>", 250)
    c.expect("RCPT TO:<alice@example.test>", 250)
    c.expect("QUIT", 221)
    log = srv.log_text()
    assert log.count("identity=postmaster@spf-fail.test result=fail") == 2  # one lookup, recorded per MAIL
    assert len(re.findall(r"event=spf_helo_lookup session=\S+ name=spf-fail.test result=fail", log)) == 1
    assert "identity=carol@spf-pass.test" in log
    assert "identity=dave@spf-pass.test" not in log  # the HELO fail decided
