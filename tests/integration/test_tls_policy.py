"""smtp_tls_policy: a TLS level per destination (none, may, encrypt, verify; dane and dane-only, which
need a signed zone, are tested in test_dane.py), over the global smtp_tls and smtp_tls_verify - the
level a bank or a partner agreed on is met or the mail waits (4.7.4, 4.7.5), never sent in
cleartext; the other destinations keep the defaults. Peers are real TLS servers (aiosmtpd) and the
scripted one, on loopback."""
import ssl
import subprocess

from conftest import BIN, wait_for
from test_relay import relay, scripted, self_signed, send, tls_peer  # noqa: F401 (relay: a fixture)

OK = lambda line, n: b"354 go\r\n" if line == "DATA" else b"250 2.0.0 ok\r\n"  # noqa: E731


def policy(tmp_path, text):
    f = tmp_path / "tls_policy"
    f.write_text(text)
    return f


def tls_context(tmp_path, cn):
    cert, key = self_signed(tmp_path, "scripted", cn)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def test_verify_for_one_domain_defers_an_untrusted_certificate_while_others_go_as_before(relay, tmp_path):
    good, good_key = self_signed(tmp_path, "good", "mx1.two-mx.test")
    other, _ = self_signed(tmp_path, "other", "mx1.two-mx.test")  # same name, not the trusted CA
    sink = tls_peer(relay, "127.0.0.2", good, good_key)
    peer = scripted(relay, reply=OK)  # scripted.test: no STARTTLS at all
    srv = relay["start"](smtp_tls_policy=policy(tmp_path, "# agreed with the bank\ntwo-mx.test verify\n"),
                         smtp_tls_ca_file=other)
    qid = send(srv, ["v@two-mx.test"])
    wait_for(lambda: "4.7.5 the TLS certificate of mx1.two-mx.test[127.0.0.2] is not valid" in srv.log_text(),
             what="a verification failure")
    wait_for(lambda: (srv.spool_dir / "state" / qid).exists(), what="the deferral recorded")
    assert sink.messages == [] and (srv.spool_dir / "queue" / qid).exists()
    send(srv, ["plain@scripted.test"])  # no policy line: smtp_tls = yes, opportunistic, as before
    wait_for(lambda: peer.bodies, what="cleartext delivery to a peer without STARTTLS")
    assert not peer.tls_used
    srv2 = relay["start"](smtp_tls_policy=policy(tmp_path, "two-mx.test verify\n"), smtp_tls_ca_file=good)
    send(srv2, ["v@two-mx.test"])
    wait_for(lambda: sink.messages, what="delivery over verified TLS")
    assert "verified=yes" in srv2.log_text()


def test_encrypt_needs_tls_but_no_valid_certificate(relay, tmp_path):
    cert, key = self_signed(tmp_path, "self", "mx1.two-mx.test")  # trusted by nobody
    sink = tls_peer(relay, "127.0.0.2", cert, key)
    peer = scripted(relay, reply=OK)  # offers no STARTTLS
    srv = relay["start"](smtp_tls_policy=policy(tmp_path, "two-mx.test encrypt\n.scripted.test encrypt\n"))
    send(srv, ["e@two-mx.test"])
    wait_for(lambda: sink.messages, what="delivery over unverified TLS")
    assert "event=smtp_client_tls host=mx1.two-mx.test[127.0.0.2]" in srv.log_text() and "verified=no" in srv.log_text()
    qid = send(srv, ["e@mx.scripted.test"])  # a subdomain (its own address: no MX): .scripted.test applies
    wait_for(lambda: "4.7.4 mx.scripted.test[127.0.0.4] does not offer STARTTLS, which smtp_tls_policy requires"
             in srv.log_text(), what="the deferral for no STARTTLS")
    wait_for(lambda: (srv.spool_dir / "state" / qid).exists(), what="the deferral recorded")
    assert peer.bodies == [] and not any(line.startswith("MAIL") for line in peer.lines)
    send(srv, ["plain@scripted.test"])  # the parent itself has no line: opportunistic, as before
    wait_for(lambda: peer.bodies, what="cleartext delivery to scripted.test")


def test_none_keeps_a_destination_in_cleartext_and_may_skips_global_verification(relay, tmp_path):
    peer = scripted(relay, tls=tls_context(tmp_path, "mx.scripted.test"), reply=OK,
                    ehlo=b"250-mx.scripted.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
    cert, key = self_signed(tmp_path, "self", "mx1.two-mx.test")
    sink = tls_peer(relay, "127.0.0.2", cert, key)
    srv = relay["start"](smtp_tls_verify="yes",  # every other destination: verified TLS or nothing
                         smtp_tls_policy=policy(tmp_path, "SCRIPTED.test none\ntwo-mx.test may\n"))
    send(srv, ["n@scripted.test"])
    wait_for(lambda: peer.bodies, what="delivery")
    assert not peer.tls_used and not any(line.startswith("STARTTLS") for line in peer.lines)
    send(srv, ["m@two-mx.test"])  # an untrusted certificate: fine for may
    wait_for(lambda: sink.messages, what="delivery over unverified TLS")
    assert "host=mx1.two-mx.test[127.0.0.2]" in srv.log_text() and "verified=no" in srv.log_text()


def test_a_relay_host_is_looked_up_as_written(relay, tmp_path):
    peer = scripted(relay, reply=OK)  # no STARTTLS
    srv = relay["start"](relay_host="[127.0.0.4]", smtp_tls_policy=policy(tmp_path, "[127.0.0.4] encrypt\n"))
    qid = send(srv, ["r@anywhere.test"])
    wait_for(lambda: "does not offer STARTTLS, which smtp_tls_policy requires" in srv.log_text(),
             what="the relay host's deferral")
    wait_for(lambda: (srv.spool_dir / "state" / qid).exists(), what="the deferral recorded")
    assert peer.bodies == []


def test_table_mistakes_name_their_line(tmp_path):
    conf = tmp_path / "p.conf"
    for line, error in [("bank.test verified", "level: expected none, may, encrypt, verify, dane or dane-only"),
                        ("bank.test", "expected 'destination level'"),
                        ("lmtp:unix:/run/lmtp verify", "destination: expected a domain"),
                        ("[not-closed verify", "destination: expected a domain")]:
        t = policy(tmp_path, "ok.test may\n" + line + "\n")
        conf.write_text(f"smtp_tls_policy = {t}\n")
        r = subprocess.run([str(BIN), "-c", str(conf), "check-config"], capture_output=True, text=True)
        assert r.returncode == 1 and f"{t}:2: smtp_tls_policy: {error}" in r.stderr, r.stderr


def test_a_policy_line_applies_with_smtp_tls_off_elsewhere(relay, tmp_path):
    """smtp_tls = no (cleartext everywhere) and one destination at verify: that one still gets
    verified TLS (the server makes its TLS client and trust store for the table), the others none."""
    good, good_key = self_signed(tmp_path, "good", "mx1.two-mx.test")
    sink = tls_peer(relay, "127.0.0.2", good, good_key)
    peer = scripted(relay, tls=tls_context(tmp_path, "mx.scripted.test"), reply=OK,
                    ehlo=b"250-mx.scripted.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
    srv = relay["start"](smtp_tls="no", smtp_tls_ca_file=good, smtp_tls_policy=policy(tmp_path, "two-mx.test verify\n"))
    route = subprocess.run([str(BIN), "-c", str(srv.conf_path), "route", "a@two-mx.test", "b@scripted.test"],
                           capture_output=True, text=True).stdout
    assert route.count("TLS: ") == 1 and "    TLS: verify (TLS or nothing, a certificate valid for the host), by " \
        "smtp_tls_policy\n" in route, route
    send(srv, ["v@two-mx.test"])
    wait_for(lambda: sink.messages, what="delivery over verified TLS")
    assert "verified=yes" in srv.log_text()
    send(srv, ["c@scripted.test"])
    wait_for(lambda: peer.bodies, what="cleartext delivery")
    assert not peer.tls_used


def test_dane_lines_without_a_trust_anchor_are_warned_of(tmp_path):
    conf = tmp_path / "p.conf"
    for line, warned in [("partner.test dane-only", True), ("partner.test verify", False)]:
        conf.write_text(f"smtp_tls_policy = {policy(tmp_path, line + chr(10))}\n")
        r = subprocess.run([str(BIN), "-c", str(conf), "check-config"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert ("key=smtp_tls_policy detail=\"it has dane or dane-only lines, and dns_trust_anchor is not set"
                in r.stderr) == warned, r.stderr
