"""DANE for relayed mail (RFC 7672) through the real binary: a DNSSEC-signed zone dane.test (signed
per test with ldns-signzone, served by its own unbound on loopback), Postern validating it with
the zone's DS as dns_trust_anchor, and real TLS peers on 127.0.0.4 (scripted, STARTTLS) and
127.0.0.2 (aiosmtpd, no STARTTLS). The TLSA records name the peer's key by its SHA-256 digest."""
import hashlib
import re
import ssl
import subprocess
import time

import pytest

from conftest import BIN, free_udp_tcp_port, wait_for
from test_relay import relay, scripted, send  # noqa: F401 (relay is a fixture)
from test_tls_auth import pki  # noqa: F401 (a fixture)


def spki_sha256(cert):
    pub = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-pubkey"], capture_output=True,
                         check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, capture_output=True,
                         check=True).stdout
    return hashlib.sha256(der).hexdigest()


def signed_zone_server(d, port, tlsa_hex):
    """Writes, signs and serves dane.test: mx.dane.test (127.0.0.4) and mx2.dane.test (127.0.0.2)
    both publish '3 1 1 tlsa_hex' for the SMTP port; mixed.dane.test has mx.dane.test and, as its
    backup, backup.plain.test (127.0.0.2) in plain.test, a zone served unsigned. Returns (the
    unbound process, the resolver for dns_resolver, the DS file). notlsa.dane.test's MX, mx3.dane.test
    (127.0.0.4 too), publishes no TLSA record. dane.test asks for TLS reports (RFC 8460) at
    tlsrpt@dane.test."""
    (d / "zone").write_text(
        "$ORIGIN dane.test.\n$TTL 300\n@ IN SOA ns.dane.test. hostmaster.dane.test. 1 3600 600 86400 300\n"
        "@ IN NS ns.dane.test.\nns IN A 127.0.0.1\n@ IN MX 10 mx.dane.test.\nmx IN A 127.0.0.4\n"
        f"_{port}._tcp.mx IN TLSA 3 1 1 {tlsa_hex}\n"
        "plain IN MX 10 mx2.dane.test.\nmx2 IN A 127.0.0.2\n"
        f"_{port}._tcp.mx2 IN TLSA 3 1 1 {tlsa_hex}\n"
        "mixed IN MX 10 mx.dane.test.\nmixed IN MX 20 backup.plain.test.\n"
        "notlsa IN MX 10 mx3.dane.test.\nmx3 IN A 127.0.0.4\n"
        '_smtp._tls IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@dane.test"\n')
    (d / "plain.zone").write_text(
        "$ORIGIN plain.test.\n$TTL 300\n@ IN SOA ns.plain.test. hostmaster.plain.test. 1 3600 600 86400 300\n"
        "@ IN NS ns.plain.test.\nns IN A 127.0.0.1\nbackup IN A 127.0.0.2\n")

    def run(*args):
        return subprocess.run(args, cwd=d, capture_output=True, text=True, check=True).stdout.strip()
    ksk = run("ldns-keygen", "-a", "ECDSAP256SHA256", "-k", "dane.test")
    zsk = run("ldns-keygen", "-a", "ECDSAP256SHA256", "dane.test")
    run("ldns-signzone", "-n", "zone", zsk, ksk)
    for _ in range(5):
        dns_port = free_udp_tcp_port()
        (d / "unbound.conf").write_text("\n".join([
            "server:", "  interface: 127.0.0.1", f"  port: {dns_port}", "  do-daemonize: no", "  use-syslog: no",
            '  logfile: ""', '  username: ""', '  chroot: ""', f'  directory: "{d}"', f'  pidfile: "{d}/u.pid"',
            "  do-ip6: no", "  access-control: 127.0.0.0/8 allow", '  module-config: "iterator"',
            '  local-zone: "." static', '  local-zone: "test." nodefault', '  local-zone: "dane.test." transparent',
            '  local-zone: "plain.test." transparent',
            "auth-zone:", '  name: "dane.test."', f'  zonefile: "{d}/zone.signed"', "  for-downstream: yes",
            "  for-upstream: no",
            "auth-zone:", '  name: "plain.test."', f'  zonefile: "{d}/plain.zone"', "  for-downstream: yes",
            "  for-upstream: no", "remote-control:", "  control-enable: no"]) + "\n")
        proc = subprocess.Popen(["unbound", "-d", "-c", str(d / "unbound.conf")], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        if proc.poll() is None:
            return proc, f"127.0.0.1@{dns_port}", d / f"{ksk}.ds"
    raise RuntimeError("the signed zone's unbound did not start")


@pytest.fixture
def dane(relay, tmp_path):  # noqa: F811
    """A TLS peer on 127.0.0.4 and the signed zone; yields a function making the zone and server."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=not-the-mx-name.example", "-keyout", str(tmp_path / "k.pem"), "-out", str(tmp_path / "c.pem")],
                   check=True, capture_output=True)  # a name no PKIX check would accept: DANE-EE ignores it
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    peer = scripted(relay, tls=ctx, ehlo=b"250-mx.scripted.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
                    reply=lambda l, n: b"354 go\r\n" if l == "DATA" else b"250 2.0.0 ok\r\n")
    procs = []

    def start(tlsa_hex, validate=True, **extra):
        zone_dir = tmp_path / f"zone{len(procs)}"
        zone_dir.mkdir()
        proc, resolver, ds = signed_zone_server(zone_dir, relay["port"], tlsa_hex)
        procs.append(proc)
        conf = dict(dns_resolver=resolver, retry_schedule="1h", **extra)
        if validate:
            conf["dns_trust_anchor"] = ds
        return relay["start"](**conf)
    yield {"start": start, "peer": peer, "digest": spki_sha256(tmp_path / "c.pem")}
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


def queue_errors(srv):
    return subprocess.run([str(BIN), "-c", str(srv.conf_path), "queue", "list"], capture_output=True,
                          text=True).stdout


def test_a_matching_tlsa_record_gets_the_mail_over_verified_tls(dane):
    srv = dane["start"](dane["digest"])
    send(srv, ["bob@dane.test"])
    wait_for(lambda: dane["peer"].bodies, what="delivery over DANE-verified TLS")
    assert dane["peer"].tls_used
    log = srv.log_text()
    assert "event=route domain=dane.test status=ok targets=1" in log and "dnssec=yes" in log
    assert "event=dane host=mx.dane.test[127.0.0.4] tlsa=usable records=1" in log
    assert "event=smtp_client_tls host=mx.dane.test[127.0.0.4] tls=TLSv1.3" in log and "verified=dane" in log


def test_a_mismatch_or_no_starttls_defers_and_never_sends_in_cleartext(dane, relay):  # noqa: F811
    plain = relay["peers"].start("127.0.0.2")  # aiosmtpd without TLS: no STARTTLS offered
    srv = dane["start"]("00" * 32)
    send(srv, ["bob@dane.test"])
    send(srv, ["carol@plain.dane.test"])
    wait_for(lambda: "matches none of its TLSA records" in queue_errors(srv) and
             "does not offer STARTTLS, which its TLSA records (DANE) require" in queue_errors(srv),
             what="both deferred")
    listing = queue_errors(srv)
    assert "4.7.5 the TLS certificate of mx.dane.test[127.0.0.4] matches none of its TLSA records (DANE)" in listing
    assert "4.7.4 mx2.dane.test[127.0.0.2] does not offer STARTTLS" in listing
    assert not any(l.startswith("MAIL") for l in dane["peer"].lines)  # no cleartext retry
    assert plain.messages == []


def test_dane_is_judged_per_mx_host(dane, relay):  # noqa: F811
    """RFC 7672 2.2.1: the MX answer is validated, so each host is judged by its own addresses:
    mx.dane.test (validated, a TLSA record its certificate does not match) is not used; the
    backup in an unsigned zone gets no DANE and takes the mail. When the whole route counted,
    one unvalidated host switched DANE off for mx.dane.test too, which then got the mail."""
    backup = relay["peers"].start("127.0.0.2")
    srv = dane["start"]("00" * 32)
    send(srv, ["bob@mixed.dane.test"])
    wait_for(lambda: backup.messages, what="delivery to the backup")
    assert not any(l.startswith("MAIL") for l in dane["peer"].lines)
    log = srv.log_text()
    assert "dnssec=no" in log  # the route as a whole is not validated
    assert "matches none of its TLSA records" in log and "event=dane host=backup" not in log


def test_tlsa_records_without_dnssec_validation_are_not_enforced(dane):
    srv = dane["start"]("00" * 32, validate=False)  # the same wrong record, but nothing validates it
    send(srv, ["bob@dane.test"])
    wait_for(lambda: dane["peer"].bodies, what="delivery with opportunistic TLS")
    log = srv.log_text()
    assert "dnssec=no" in log and "event=dane " not in log and "verified=no" in log


def tls_policy(tmp_path, text):
    f = tmp_path / "tls_policy"
    f.write_text(text)
    return f


def test_dane_only_delivers_over_dane_with_smtp_dane_off(dane, tmp_path):
    """smtp_tls_policy dane-only brings DANE to its destination even where smtp_dane = no."""
    srv = dane["start"](dane["digest"], smtp_dane="no", smtp_tls_policy=tls_policy(tmp_path, "dane.test dane-only\n"))
    route = subprocess.run([str(BIN), "-c", str(srv.conf_path), "route", "a@dane.test"], capture_output=True,
                           text=True).stdout
    assert "    TLS: dane-only (DANE or nothing: DNSSEC-validated TLSA records required), by smtp_tls_policy\n" \
        in route, route
    send(srv, ["bob@dane.test"])
    wait_for(lambda: dane["peer"].bodies, what="delivery over DANE-verified TLS")
    assert dane["peer"].tls_used and "verified=dane" in srv.log_text()


def test_dane_only_defers_a_host_without_validated_tlsa_records_and_never_connects(dane, tmp_path):
    """dane-only and no DANE to be had - no TLSA record, or a zone nothing validates: deferred,
    saying which, before any connection (no cleartext, no unauthenticated TLS)."""
    policy = tls_policy(tmp_path, "notlsa.dane.test dane-only\ndane.test dane-only\n")
    srv = dane["start"](dane["digest"], smtp_tls_policy=policy)
    send(srv, ["bob@notlsa.dane.test"])
    wait_for(lambda: "4.7.5 mx3.dane.test[127.0.0.4] publishes no DNSSEC-validated TLSA records: no DANE, "
             "which smtp_tls_policy requires (dane-only)" in queue_errors(srv), what="the deferral")
    unvalidated = dane["start"](dane["digest"], validate=False, smtp_tls_policy=policy)
    send(unvalidated, ["bob@dane.test"])
    wait_for(lambda: "4.7.5 the MX records of dane.test are not DNSSEC-validated: no DANE, which smtp_tls_policy "
             "requires (dane-only)" in queue_errors(unvalidated), what="the deferral")
    assert dane["peer"].lines == []  # neither server connected


def test_the_dane_level_enforces_tlsa_records_with_smtp_dane_off_and_is_may_without_them(dane, tmp_path):
    srv = dane["start"]("00" * 32, smtp_dane="no",
                        smtp_tls_policy=tls_policy(tmp_path, "dane.test dane\nnotlsa.dane.test dane\n"))
    send(srv, ["bob@dane.test"])  # a TLSA record the certificate does not match
    wait_for(lambda: "matches none of its TLSA records" in queue_errors(srv), what="the deferral")
    assert not any(line.startswith("MAIL") for line in dane["peer"].lines)
    send(srv, ["carol@notlsa.dane.test"])  # no TLSA record: opportunistic TLS, as may
    wait_for(lambda: dane["peer"].bodies, what="delivery over unverified TLS")
    assert "event=smtp_client_tls host=mx3.dane.test[127.0.0.4]" in srv.log_text()
    assert "verified=no" in srv.log_text()


def test_a_relay_host_named_in_the_table_gets_dane_for_its_own_name(dane, relay, tmp_path):  # noqa: F811
    """A next hop the administrator named has no MX lookup: RFC 7672 takes the TLSA records of the
    host itself (its addresses validated), here _port._tcp.mx.dane.test."""
    hop = f"[mx.dane.test]:{relay['port']}"
    srv = dane["start"](dane["digest"], relay_host=hop, smtp_tls_policy=tls_policy(tmp_path, f"{hop} dane-only\n"))
    send(srv, ["r@anywhere.test"])
    wait_for(lambda: dane["peer"].bodies, what="delivery over DANE to the relay host")
    assert "event=dane host=mx.dane.test[127.0.0.4] tlsa=usable records=1" in srv.log_text()
    assert "verified=dane" in srv.log_text()


def tlsa_record(tmp_path, hostname, cert, key, extra=""):
    """postern tlsa-record for a configuration with this certificate: (exit status, stdout, stderr)."""
    conf = tmp_path / "tlsa.conf"
    conf.write_text(f"hostname = {hostname}\nlocal_domains = example.test\ntls_cert = {cert}\ntls_key = {key}\n{extra}")
    r = subprocess.run([str(BIN), "-c", str(conf), "tlsa-record"], capture_output=True, text=True, timeout=10)
    return r.returncode, r.stdout, r.stderr


def test_the_tlsa_record_postern_prints_is_one_dane_accepts(dane, tmp_path):
    """postern tlsa-record for the peer's certificate: its 3 1 1 record, published in the signed
    zone, gets the mail through over DANE-verified TLS (a self-signed certificate: no 2 1 1)."""
    rc, out, _ = tlsa_record(tmp_path, "mx.dane.test", tmp_path / "c.pem", tmp_path / "k.pem")
    assert rc == 0, out
    [digest] = re.findall(r"^_25\._tcp\.mx\.dane\.test\. IN TLSA 3 1 1 ([0-9a-f]{64})$", out, re.M)
    assert digest == dane["digest"]
    assert "IN TLSA 2 1 1" not in out and "no certificate of its issuer in the file" in out
    srv = dane["start"](digest)
    send(srv, ["bob@dane.test"])
    wait_for(lambda: dane["peer"].bodies, what="delivery over DANE-verified TLS")
    assert "verified=dane" in srv.log_text()


def test_tlsa_records_for_a_ca_chain_and_each_sni_name(pki, tmp_path):  # noqa: F811
    """A certificate file holding the issuing CA's certificate also gets a 2 1 1 record of the CA's
    key; each tls_sni name gets its own certificate's records (a wildcard only a comment); without
    tls_cert there is nothing to publish (exit 1). The CA and server certificate: test_tls_auth's."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=mail.other.test", "-keyout", "other.key", "-out", "other.pem"], cwd=tmp_path, check=True,
                   capture_output=True)
    (tmp_path / "chain.pem").write_text((pki / "cert.pem").read_text() + (pki / "ca.pem").read_text())
    (tmp_path / "sni").write_text(f"mail.other.test {tmp_path / 'other.pem'} {tmp_path / 'other.key'}\n"
                                  f"*.wild.test {tmp_path / 'other.pem'} {tmp_path / 'other.key'}\n")
    rc, out, err = tlsa_record(tmp_path, "mx.example.test", tmp_path / "chain.pem", pki / "key.pem",
                               f"tls_sni = {tmp_path / 'sni'}\n")
    assert rc == 0, err
    records = re.findall(r"^(_25\._tcp\.[a-z.]+\.) IN TLSA (\d \d \d) ([0-9a-f]{64})$", out, re.M)
    assert records == [("_25._tcp.mx.example.test.", "3 1 1", spki_sha256(pki / "cert.pem")),
                       ("_25._tcp.mx.example.test.", "2 1 1", spki_sha256(pki / "ca.pem")),
                       ("_25._tcp.mail.other.test.", "3 1 1", spki_sha256(tmp_path / "other.pem"))]
    assert "*.wild.test (tls_sni): a wildcard" in out
    conf = tmp_path / "none.conf"
    conf.write_text("hostname = mx.example.test\nlocal_domains = example.test\n")
    r = subprocess.run([str(BIN), "-c", str(conf), "tlsa-record"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "no TLS certificate (tls_cert is not set)" in r.stderr and r.stdout == ""


def test_a_tls_report_states_the_tlsa_policy_and_its_sessions(dane):
    """RFC 8460 with DANE: the session verified by the TLSA record is counted under policy type
    tlsa, the record as its policy-string; the report reaches tlsrpt@dane.test through the same MX."""
    import email
    import email.policy
    import gzip
    import json
    srv = dane["start"](dane["digest"], tls_reports="yes", tls_report_interval="2s")
    send(srv, ["bob@dane.test"])
    reports = wait_for(lambda: [b for b in dane["peer"].bodies if b"TLS-Report-Domain: dane.test" in b],
                       what="the TLS report", timeout=30)
    msg = email.message_from_bytes(reports[0].replace(b"\r\n..", b"\r\n."), policy=email.policy.default)
    (part,) = [p for p in msg.iter_attachments() if p.get_content_type() == "application/tlsrpt+gzip"]
    (policy,) = json.loads(gzip.decompress(part.get_content()))["policies"]
    assert policy["policy"] == {"policy-type": "tlsa", "policy-string": [f"3 1 1 {dane['digest']}"],
                                "policy-domain": "dane.test", "mx-host": ["mx.dane.test"]}
    assert policy["summary"] == {"total-successful-session-count": 1, "total-failure-session-count": 0}
