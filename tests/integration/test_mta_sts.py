"""MTA-STS (RFC 8461) for relayed mail through the real binary: the recipient domain sts.test is
served by its own unbound (TXT _mta-sts.sts.test, MX, the policy host's address; TTLs of 1 s so a
zone can change under a running server), the policy by a real HTTPS server (Python's http.server
over ssl) on a random loopback address, port 443, and the mail exchanger is a real TLS peer
(aiosmtpd, STARTTLS required). Certificates are self-signed, trusted through smtp_tls_ca_file."""
import http.server
import random
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import BIN, free_udp_tcp_port, wait_for
from test_relay import dsn_for, relay, self_signed, send, tls_peer  # noqa: F401 (relay: a fixture)

ENFORCE = "version: STSv1\r\nmode: enforce\r\nmx: mx.sts.test\r\nmax_age: 86400\r\n"


class PolicyServer:
    """HTTPS on (ip, 443) answering every GET with (status, content type, body); counts requests and
    keeps their Host headers; keeps each POST (Host, path, Content-Type, body) and answers 200 - 503
    to the first fail_posts of them."""

    def __init__(self, cert, key, answer, ip=None, fail_posts=0):
        self.answer, self.hosts, self.posts, self.fail_posts = answer, [], [], fail_posts
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                server.hosts.append((self.headers.get("Host"), self.path))
                status, ctype, body = server.answer
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802 (http.server's name): a TLS report (RFC 8460 5.4)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.posts.append((self.headers.get("Host"), self.path, self.headers.get("Content-Type"), body))
                failing = len(server.posts) <= server.fail_posts
                self.send_response(503 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        class Server(http.server.ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ip and ":" in ip else socket.AF_INET
        for _ in range(50):
            self.ip = ip or f"127.0.{random.randint(10, 250)}.{random.randint(2, 250)}"
            try:
                self.httpd = Server((self.ip, 443), Handler)
                break
            except OSError:
                continue
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Zone:
    """unbound serving sts.test from local-data; restart(records) swaps the records, same port."""

    def __init__(self, d):
        self.d, self.port, self.proc = d, free_udp_tcp_port(), None

    def start(self, records):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        lines = ["server:", "  interface: 127.0.0.1", f"  port: {self.port}", "  do-daemonize: no",
                 "  use-syslog: no", '  logfile: ""', '  username: ""', '  chroot: ""', f'  directory: "{self.d}"',
                 f'  pidfile: "{self.d}/u.pid"', "  do-ip6: no", "  access-control: 127.0.0.0/8 allow",
                 '  module-config: "iterator"', "  rrset-roundrobin: no", '  local-zone: "." static', '  local-zone: "sts.test." static']
        lines += [f"  local-data: '{r}'" for r in records]
        lines += ["remote-control:", "  control-enable: no"]
        (self.d / "unbound.conf").write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen(["unbound", "-d", "-c", str(self.d / "unbound.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):  # listening (on TCP as on UDP)
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the zone's unbound did not start")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def records(policy_ip, txt_id="1", mx="mx.sts.test", txt=True):
    r = [f"sts.test. 1 IN MX 10 {mx}.", "mx.sts.test. 1 IN A 127.0.0.2", "mx2.sts.test. 1 IN A 127.0.0.2",
         f"mta-sts.sts.test. 1 IN A {policy_ip}"]
    if txt:
        r.append(f'_mta-sts.sts.test. 1 IN TXT "v=STSv1; id={txt_id};"')
    return r


@pytest.fixture
def sts(relay, tmp_path):  # noqa: F811
    """Certificates for mx.sts.test and mta-sts.sts.test, the MX peer, the policy server, the zone;
    start(answer, **conf) -> the Postern."""
    mx_cert, mx_key = self_signed(tmp_path, "mx", "mx.sts.test")
    web_cert, web_key = self_signed(tmp_path, "web", "mta-sts.sts.test")
    trusted = tmp_path / "trusted.pem"
    trusted.write_text(mx_cert.read_text() + web_cert.read_text())
    trusted.chmod(0o644)
    state = {"peer": tls_peer(relay, "127.0.0.2", mx_cert, mx_key), "servers": [], "tmp": tmp_path}
    zone = Zone(tmp_path)

    def start(answer=(200, "text/plain", ENFORCE), web=(web_cert, web_key), zone_records=None, **conf):
        web_server = PolicyServer(*web, answer)
        state["servers"].append(web_server)
        state["web"] = web_server
        zone.start(zone_records or records(web_server.ip))
        state["zone"] = zone
        settings = dict(dns_resolver=f"127.0.0.1@{zone.port}", smtp_tls_ca_file=trusted, retry_schedule="1h")
        settings.update(conf)
        return relay["start"](**settings)
    state["start"] = start
    yield state
    for s in state["servers"]:
        s.stop()
    zone.stop()


def queue_listing(srv):
    return subprocess.run([str(BIN), "-c", str(srv.conf_path), "queue", "list"], capture_output=True,
                          text=True).stdout


def route(srv, address):
    return subprocess.run([str(BIN), "-c", str(srv.conf_path), "route", address], capture_output=True,
                          text=True).stdout


def test_an_enforce_policy_is_fetched_and_met_with_verified_tls(sts):
    srv = sts["start"]()
    assert "    MTA-STS: no policy cached (looked up when mail goes there)\n" in route(srv, "bob@sts.test")
    send(srv, ["bob@sts.test"])
    wait_for(lambda: sts["peer"].messages, what="delivery")
    wait_for(lambda: "MTA-STS: enforce, cached until " in route(srv, "bob@sts.test"), what="route's view")
    assert "; mx: mx.sts.test\n" in route(srv, "bob@sts.test")
    log = srv.log_text()
    assert "event=mta_sts domain=sts.test policy=fetched mode=enforce mx_patterns=1 max_age=86400" in log
    assert "event=smtp_client_tls host=mx.sts.test[127.0.0.2]" in log and "verified=yes" in log
    assert sts["web"].hosts == [("mta-sts.sts.test", "/.well-known/mta-sts.txt")]


def test_enforce_defers_an_invalid_mx_certificate_and_an_unlisted_mx(sts, relay, tmp_path):  # noqa: F811
    """The MX's certificate is not trusted (not in smtp_tls_ca_file): deferred, never sent; and an MX
    the policy does not list is not connected to at all."""
    other, _ = self_signed(tmp_path, "other", "mx.sts.test")
    srv = sts["start"](smtp_tls_ca_file=sts["tmp"] / "web.pem")  # trusts the policy host only
    qid = send(srv, ["bob@sts.test"])
    wait_for(lambda: "4.7.5 the TLS certificate of mx.sts.test[127.0.0.2] is not valid" in queue_listing(srv),
             what="the deferral")
    assert sts["peer"].messages == []
    srv2 = sts["start"](zone_records=None, answer=(200, "text/plain", ENFORCE.replace("mx.sts.test", "mx9.sts.test")))
    qid = send(srv2, ["carol@sts.test"])
    wait_for(lambda: "4.7.5 no mail exchanger of sts.test is listed in its MTA-STS policy (mx.sts.test is not"
             in queue_listing(srv2), what="the deferral")
    assert "event=mta_sts_mx_mismatch domain=sts.test host=mx.sts.test mode=enforce action=not_used" in \
        srv2.log_text()
    assert sts["peer"].messages == [] and qid


def test_testing_mode_logs_and_delivers(sts):
    policy = "version: STSv1\nmode: testing\nmx: *.elsewhere.test\nmax_age: 600\n"
    srv = sts["start"](answer=(200, "text/plain; charset=utf-8", policy))
    send(srv, ["bob@sts.test"])
    wait_for(lambda: sts["peer"].messages, what="delivery")
    log = srv.log_text()
    assert "policy=fetched mode=testing" in log
    assert "event=mta_sts_mx_mismatch domain=sts.test host=mx.sts.test mode=testing action=used" in log


def test_testing_mode_logs_what_enforce_would_refuse_and_delivers(sts, relay):  # noqa: F811
    """testing, the MX listed: a certificate not trusted (smtp_tls_ca_file holds the policy host's
    only), then one trusted but for another name (the MX is mx2.sts.test, the certificate says
    mx.sts.test), then an MX offering no STARTTLS: each logged as enforce's failure, the mail
    delivered."""
    policy = "version: STSv1\nmode: testing\nmx: mx.sts.test\nmx: mx2.sts.test\nmx: mx3.sts.test\nmax_age: 600\n"
    srv = sts["start"](answer=(200, "text/plain", policy), smtp_tls_ca_file=sts["tmp"] / "web.pem")
    send(srv, ["bob@sts.test"])
    wait_for(lambda: sts["peer"].messages, what="delivery")
    log = srv.log_text()
    assert "event=mta_sts_testing_failure domain=sts.test host=mx.sts.test[127.0.0.2] error=\"the TLS " \
           "certificate of mx.sts.test[127.0.0.2] is not valid: self-signed certificate\" action=sent" in log, log
    assert "verified=no" in log and "mta_sts_mx_mismatch" not in log
    srv1 = sts["start"](answer=(200, "text/plain", policy), zone_records=records(sts["web"].ip, mx="mx2.sts.test"))
    send(srv1, ["carol@sts.test"])
    wait_for(lambda: len(sts["peer"].messages) == 2, what="delivery to mx2")
    assert "event=mta_sts_testing_failure domain=sts.test host=mx2.sts.test[127.0.0.2] error=\"the TLS " \
           "certificate of mx2.sts.test[127.0.0.2] is not valid: hostname mismatch\"" in srv1.log_text()
    plain = relay["peers"].start("127.0.0.3")
    zone = records(sts["web"].ip, mx="mx3.sts.test") + ["mx3.sts.test. 1 IN A 127.0.0.3"]
    srv2 = sts["start"](answer=(200, "text/plain", policy), zone_records=zone)
    send(srv2, ["dave@sts.test"])
    wait_for(lambda: plain.messages, what="delivery in cleartext")
    assert "event=mta_sts_testing_failure domain=sts.test host=mx3.sts.test[127.0.0.3] error=\"mx3.sts.test" \
           "[127.0.0.3] was reached without TLS" in srv2.log_text()


def test_testing_mode_says_nothing_when_tls_would_pass(sts):
    policy = "version: STSv1\nmode: testing\nmx: mx.sts.test\nmax_age: 600\n"
    srv = sts["start"](answer=(200, "text/plain", policy))
    send(srv, ["bob@sts.test"])
    wait_for(lambda: sts["peer"].messages, what="delivery")
    wait_for(lambda: "event=smtp_client_tls host=mx.sts.test" in srv.log_text(), what="the TLS line")
    assert "mta_sts_testing_failure" not in srv.log_text() and "policy=fetched mode=testing" in srv.log_text()


@pytest.mark.parametrize("answer,web,error", [
    ((404, "text/plain", "gone"), None, "HTTP status 404"),
    ((200, "text/html", ENFORCE), None, "Content-Type is text/html, not text/plain"),
    ((200, "text/plain", "version: STSv1\nmode: enforce\nmx: mx9.sts.test\n"), None, "no max_age line"),
    ((200, "text/plain", ENFORCE), "untrusted", "the certificate of mta-sts.sts.test (at 127.0."),
])
def test_a_policy_that_cannot_be_had_fails_open(sts, tmp_path, answer, web, error):
    """RFC 8461 5: no usable policy and none cached - mail goes as without MTA-STS."""
    keys = self_signed(tmp_path, "untrusted", "mta-sts.sts.test") if web else (sts["tmp"] / "web.pem",
                                                                                  sts["tmp"] / "web.key")
    srv = sts["start"](answer=answer, web=keys)
    send(srv, ["bob@sts.test"])
    wait_for(lambda: sts["peer"].messages, what="delivery without a policy")
    log = srv.log_text()
    assert "event=mta_sts_fetch_failed domain=sts.test" in log and "cached=no" in log and error in log, log
    assert "event=mta_sts " not in log


def test_a_cached_policy_holds_when_its_record_changes_and_the_fetch_fails(sts):
    """The policy (enforce, mx.sts.test) is cached; then the zone says id=2 and MX mx2.sts.test while
    the policy server is gone - the cached policy still applies: mx2 is not listed, the mail waits.
    An attacker who controls DNS and blocks HTTPS cannot switch MTA-STS off."""
    srv = sts["start"]()
    send(srv, ["bob@sts.test"])
    wait_for(lambda: sts["peer"].messages, what="the first delivery")
    sts["web"].stop()
    sts["servers"].remove(sts["web"])
    sts["zone"].start(records(sts["web"].ip, txt_id="2", mx="mx2.sts.test"))
    time.sleep(2.5)  # the route and the record (TTL 1 s) are looked up again
    send(srv, ["carol@sts.test"])
    wait_for(lambda: "no mail exchanger of sts.test is listed in its MTA-STS policy" in queue_listing(srv),
             what="the deferral by the cached policy")
    log = srv.log_text()
    assert "event=mta_sts_fetch_failed domain=sts.test" in log and "cached=yes" in log
    assert "policy=cached mode=enforce" in log and len(sts["peer"].messages) == 1


def test_no_record_means_no_policy_and_no_fetch(sts):
    srv = sts["start"](zone_records=["sts.test. 1 IN MX 10 mx.sts.test.", "mx.sts.test. 1 IN A 127.0.0.2"])
    send(srv, ["bob@sts.test"])
    wait_for(lambda: sts["peer"].messages, what="delivery")
    assert sts["web"].hosts == [] and "event=mta_sts" not in srv.log_text()


def test_a_policy_host_that_never_answers_is_given_up_after_the_timeout(sts):
    """A listener that takes the connection and never speaks: the fetch ends at smtp_mta_sts_timeout
    and the mail goes as without a policy (none cached)."""
    srv = None
    silent = socket.socket()
    try:
        srv_ip = None
        for _ in range(50):
            srv_ip = f"127.0.{random.randint(10, 250)}.{random.randint(2, 250)}"
            try:
                silent.bind((srv_ip, 443))
                break
            except OSError:
                continue
        silent.listen(5)
        srv = sts["start"](smtp_mta_sts_timeout="1s")
        sts["zone"].start(records(srv_ip))
        time.sleep(1.5)  # the first zone's answers (TTL 1 s) are gone
        started = time.monotonic()
        send(srv, ["bob@sts.test"])
        wait_for(lambda: sts["peer"].messages, what="delivery without a policy")
        assert time.monotonic() - started < 10
        log = srv.log_text()
        assert "event=mta_sts_fetch_failed" in log and f"no answer from {srv_ip} within 1 s" in log and "cached=no" in log, log
    finally:
        silent.close()


def test_a_policy_host_address_that_cannot_be_reached_gives_way_to_the_next(sts):
    """mta-sts.sts.test has two addresses: an IPv4 one refusing connections (nothing listens there),
    tried first (IPv4 before IPv6), and ::1, where the policy is: it comes from ::1, and the failed
    address is logged. Then a new id and only the dead address: the fetch fails naming it, and the
    cached policy goes on."""
    dead = "127.0.253.9"
    srv = sts["start"]()
    v6 = PolicyServer(sts["tmp"] / "web.pem", sts["tmp"] / "web.key", (200, "text/plain", ENFORCE), ip="::1")
    sts["servers"].append(v6)
    zone = [x for x in records(sts["web"].ip) if sts["web"].ip not in x]
    sts["zone"].start(zone + [f"mta-sts.sts.test. 1 IN A {dead}", "mta-sts.sts.test. 1 IN AAAA ::1"])  # none asked yet
    send(srv, ["bob@sts.test"])
    wait_for(lambda: sts["peer"].messages, what="delivery")
    wait_for(lambda: "verified=yes" in srv.log_text(), what="the verified delivery")
    log = srv.log_text()
    assert f"event=mta_sts_fetch_retry domain=sts.test host=mta-sts.sts.test error=\"the HTTPS connection to " \
           f"{dead} failed" in log, log
    assert "policy=fetched mode=enforce" in log and "mta_sts_fetch_failed" not in log
    assert v6.hosts == [("mta-sts.sts.test", "/.well-known/mta-sts.txt")] and sts["web"].hosts == []
    zone = [x for x in records(sts["web"].ip, txt_id="2") if sts["web"].ip not in x]
    sts["zone"].start(zone + [f"mta-sts.sts.test. 1 IN A {dead}"])
    time.sleep(2.5)  # the route and the record (TTL 1 s) are looked up again
    send(srv, ["carol@sts.test"])
    wait_for(lambda: len(sts["peer"].messages) == 2, what="the second delivery, by the cached policy")
    assert f"cached=yes error=\"the HTTPS connection to {dead} failed" in srv.log_text(), srv.log_text()


def test_the_cache_outlives_a_restart(sts):
    """The fetched policy is written to spool_dir/mta-sts.cache; after a restart - the record's id
    changed, its policy host gone, the MX moved to mx2 - the policy read back still applies. A line
    that is not a policy is dropped."""
    srv = sts["start"]()
    send(srv, ["bob@sts.test"])
    wait_for(lambda: sts["peer"].messages, what="the first delivery")
    cache = srv.spool_dir / "mta-sts.cache"
    wait_for(lambda: cache.exists() and cache.read_text(), what="the cache file")
    fields = cache.read_text().split()
    assert fields[:2] == ["sts.test", "1"] and fields[3:] == ["enforce", "86400", "mx.sts.test"], fields
    assert abs(int(fields[2]) - (time.time() + 86400)) < 60
    srv.stop()
    with cache.open("a") as f:
        f.write("junk.test 1 99999999999 enforce 86400 bad..pattern\n")
    sts["web"].stop()
    sts["servers"].remove(sts["web"])
    sts["zone"].start(records(sts["web"].ip, txt_id="2", mx="mx2.sts.test"))
    srv.start()
    assert "event=mta_sts_cache_loaded" in srv.log_text() and "policies=1 dropped=1" in srv.log_text()
    send(srv, ["carol@sts.test"])
    wait_for(lambda: "no mail exchanger of sts.test is listed in its MTA-STS policy" in queue_listing(srv),
             what="the deferral by the policy read back")
    assert len(sts["peer"].messages) == 1


def test_a_policy_past_half_its_max_age_is_fetched_again_in_the_background(sts):
    srv = sts["start"](answer=(200, "text/plain", ENFORCE.replace("86400", "8")))
    send(srv, ["bob@sts.test"])
    wait_for(lambda: sts["peer"].messages, what="the first delivery")
    assert len(sts["web"].hosts) == 1
    time.sleep(5.2)  # past half of max_age 8 (in whole seconds: 5 or 6), not past it; the route looked up again
    send(srv, ["carol@sts.test"])
    wait_for(lambda: len(sts["peer"].messages) == 2, what="the second delivery")
    wait_for(lambda: len(sts["web"].hosts) == 2, what="the refresh")
    log = srv.log_text()
    assert "policy=cached mode=enforce" in log and "event=mta_sts_refresh domain=sts.test" in log


def test_postern_mta_sts_fetches_and_explains_a_policy(sts):
    srv = sts["start"]()

    def cli(domain):
        return subprocess.run([str(BIN), "-c", str(srv.conf_path), "mta-sts", domain], capture_output=True,
                              text=True, timeout=60)
    r = cli("sts.test")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("sts.test: MTA-STS policy, mode enforce, max_age 86400 s\n  mx: mx.sts.test\n")
    assert "enforce: mail goes only to MX hosts these name" in r.stdout
    assert not (srv.spool_dir / "mta-sts.cache").exists()  # the server's cache is not touched
    sts["web"].answer = (404, "text/plain", "none")
    r = cli("other.sts.test")  # no record at all
    assert r.returncode == 1 and "other.sts.test: no MTA-STS policy applies" in r.stdout
    sts["zone"].start(records(sts["web"].ip, txt_id="9"))
    r = cli("sts.test")  # a record, and a policy server answering 404
    assert r.returncode == 1 and "HTTP status 404" in r.stderr, r.stderr
    assert cli("not a domain").returncode == 2


def test_the_bounce_says_in_plain_words_what_the_policy_refused(sts):
    """An MX the enforce policy does not list, until max_queue_lifetime: the sender's bounce names
    the policy and says who must fix what - not "check the message's signature"."""
    srv = sts["start"](answer=(200, "text/plain", ENFORCE.replace("mx.sts.test", "mx9.sts.test")),
                       max_queue_lifetime="3s", retry_schedule="1s")
    send(srv, ["bob@sts.test"])
    msg = dsn_for(srv)
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert "no mail exchanger of sts.test is listed in its MTA-STS policy" in text, text
    assert "the receiving site must renew its certificate or update its records: tell its postmaster" in text
    assert "Check the message's signature" not in text and sts["peer"].messages == []


def test_the_metrics_count_fetches_failures_and_unlisted_mx_hosts(sts):
    from conftest import free_port
    from test_metrics import scrape
    port = free_port()
    srv = sts["start"](answer=(200, "text/plain", ENFORCE.replace("mx.sts.test", "mx9.sts.test")),
                       metrics_listen=f"127.0.0.1:{port}")
    send(srv, ["bob@sts.test"])
    wait_for(lambda: "no mail exchanger of sts.test is listed" in queue_listing(srv), what="the deferral")
    body = scrape(port)[2]
    assert "postern_mta_sts_policies_cached 1\n" in body and 'postern_mta_sts_fetches_total{result="ok"} 1\n' in body
    assert 'postern_mta_sts_fetches_total{result="failed"} 0\n' in body
    assert "postern_mta_sts_mx_not_used_total 1\n" in body, body


def tls_report_of(sts, domain="sts.test"):
    """The first TLS report the peer received: (its header fields, its JSON)."""
    import email
    import email.policy
    import gzip
    import json
    found = wait_for(lambda: [m for m in sts["peer"].messages if "tlsrpt@sts.test" in m[1]], what="a TLS report",
                     timeout=30)
    msg = email.message_from_bytes(found[0][2], policy=email.policy.default)
    parts = [p for p in msg.iter_attachments() if p.get_content_type() == "application/tlsrpt+gzip"]
    assert msg.get_content_type() == "multipart/report" and msg.get_param("report-type") == "tlsrpt", msg
    return found[0][0], msg, json.loads(gzip.decompress(parts[0].get_content())), parts[0].get_filename()


def test_a_tls_report_goes_to_the_address_the_domain_publishes(sts):
    """RFC 8460: enforce met, so one successful session; the period (2 s) ends; _smtp._tls.sts.test
    names mailto:tlsrpt@sts.test; the report - multipart/report with the gzip'd JSON - is relayed
    there like any mail."""
    srv = sts["start"](tls_reports="yes", tls_report_interval="2s", tls_report_organization="Example Org")
    sts["zone"].start(records(sts["web"].ip) + ['_smtp._tls.sts.test. 1 IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@sts.test"'])
    send(srv, ["bob@sts.test"])
    wait_for(lambda: sts["peer"].messages, what="delivery")
    sender, msg, report, filename = tls_report_of(sts)
    assert sender == "postmaster@mx.example.test" and msg["From"].addresses[0].addr_spec == sender
    assert msg["TLS-Report-Domain"] == "sts.test" and msg["TLS-Report-Submitter"] == "Example Org"
    assert msg["Subject"].startswith("Report Domain: sts.test Submitter: Example Org Report-ID: <")
    assert filename.startswith("Example Org!sts.test!") and filename.endswith(".json.gz")
    assert report["organization-name"] == "Example Org" and report["contact-info"] == "postmaster@mx.example.test"
    assert set(report["date-range"]) == {"start-datetime", "end-datetime"}
    (policy,) = report["policies"]
    assert policy["policy"] == {"policy-type": "sts", "policy-domain": "sts.test", "mx-host": ["mx.sts.test"],
                                "policy-string": ["version: STSv1", "mode: enforce", "mx: mx.sts.test",
                                                  "max_age: 86400"]}
    assert policy["summary"] == {"total-successful-session-count": 1, "total-failure-session-count": 0}
    assert "failure-details" not in policy
    assert "event=tls_report domain=sts.test" in srv.log_text()


def test_a_tls_report_details_what_failed(sts):
    """testing mode, the MX's certificate not trusted: delivered, and the report says
    certificate-not-trusted for mx.sts.test at 127.0.0.2. A domain without a record gets none."""
    policy = "version: STSv1\nmode: testing\nmx: mx.sts.test\nmax_age: 600\n"
    srv = sts["start"](answer=(200, "text/plain", policy), smtp_tls_ca_file=sts["tmp"] / "web.pem",
                       tls_reports="yes", tls_report_interval="2s")
    sts["zone"].start(records(sts["web"].ip) +
                      ['_smtp._tls.sts.test. 1 IN TXT "v=TLSRPTv1;rua=mailto:tlsrpt@sts.test,https://r.example/x"'])
    send(srv, ["bob@sts.test"])
    _, _, report, _ = tls_report_of(sts)
    (policy,) = report["policies"]
    assert policy["summary"]["total-failure-session-count"] >= 1
    assert {"result-type": "certificate-not-trusted", "receiving-mx-hostname": "mx.sts.test",
            "receiving-ip": "127.0.0.2", "failed-session-count": 1} in policy["failure-details"], policy
    sts["zone"].start(records(sts["web"].ip))  # no _smtp._tls record
    time.sleep(1.5)
    send(srv, ["carol@sts.test"])  # a new result, whose period ends with no record to report to
    wait_for(lambda: "event=tls_report_skipped domain=sts.test reason=no_record" in srv.log_text(),
             what="a period without a record", timeout=30)


def test_tls_required_no_sends_past_a_failing_policy_and_reports_always_do(sts):
    """RFC 8689: a message with "TLS-Required: No" goes without the domain's MTA-STS policy - here
    enforce, with an MX certificate that is not trusted: the plain message waits (4.7.5), the
    TLS-Required: No one is delivered. RFC 8460 3: the TLS report about that failure is delivered
    the same way, or it could never reach a domain whose TLS is broken."""
    srv = sts["start"](smtp_tls_ca_file=sts["tmp"] / "web.pem", tls_reports="yes", tls_report_interval="2s")
    sts["zone"].start(records(sts["web"].ip) + ['_smtp._tls.sts.test. 1 IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@sts.test"'])
    held = send(srv, ["bob@sts.test"], body=b"Subject: plain\r\n\r\nwaits\r\n")
    send(srv, ["carol@sts.test"], body=b"Subject: urgent\r\nTLS-Required: No\r\n\r\ngoes\r\n")
    wait_for(lambda: any("carol@sts.test" in m[1] for m in sts["peer"].messages), what="the TLS-Required: No one")
    wait_for(lambda: f"4.7.5 the TLS certificate of mx.sts.test[127.0.0.2] is not valid" in queue_listing(srv),
             what="the plain one deferred")
    assert held in queue_listing(srv) and not any("bob@sts.test" in m[1] for m in sts["peer"].messages)
    _, msg, report, _ = tls_report_of(sts)
    assert msg["TLS-Required"] == "No"
    (policy,) = report["policies"]
    assert policy["failure-details"][0]["result-type"] == "certificate-not-trusted", policy
    assert policy["summary"]["total-successful-session-count"] == 0  # neither exempt session is counted


def test_tls_reports_that_could_never_be_made_are_warned_about(tmp_path):
    from conftest import check_config
    conf = tmp_path / "p.conf"
    for text, warned in (("tls_reports = yes\nsmtp_tls = no\n", "smtp_tls = no: without outbound TLS"),
                         ("tls_reports = yes\nsmtp_mta_sts = no\nsmtp_dane = no\n", "smtp_mta_sts and smtp_dane are "
                          "both no"),
                         ("tls_reports = yes\n", None)):
        conf.write_text("hostname = mx.example.test\n" + text)
        out = check_config(conf)
        assert out.returncode == 0, out.stderr
        assert (warned in out.stderr) if warned else "key=tls_reports" not in out.stderr, out.stderr


def test_tls_report_counts_outlive_a_restart(sts):
    """A stop writes the period's counts to spool_dir/tls-report; the next start goes on with them
    (and a stop writes them again); counts of a period that ended meanwhile are reported at start."""
    if time.time() % 3600 > 3590:  # the whole test within one period of an hour
        time.sleep(3600 - time.time() % 3600 + 0.5)
    srv = sts["start"](tls_reports="yes", tls_report_interval="1h")
    sts["zone"].start(records(sts["web"].ip) + ['_smtp._tls.sts.test. 1 IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@sts.test"'])
    send(srv, ["bob@sts.test"])
    wait_for(lambda: sts["peer"].messages, what="delivery")
    srv.stop()
    state = srv.spool_dir / "tls-report"
    head, *lines = state.read_text().splitlines()
    start = int(head.split()[2])
    assert head == f"postern-tls-report 1 {start} 3600" and start % 3600 == 0, head
    assert lines[:2] == ["D sts.test", "P 0 1 0"] and "L mode: enforce" in lines and "M mx.sts.test" in lines, lines
    srv.start()
    assert "event=tls_report_state_loaded" in srv.log_text() and "domains=1 complete=yes" in srv.log_text()
    assert not state.exists()  # consumed; the next stop writes it again
    srv.stop()
    assert state.read_text().splitlines()[1:3] == ["D sts.test", "P 0 1 0"]
    state.write_text(state.read_text().replace(f" {start} 3600", f" {start - 3600} 3600", 1))  # that period is over
    srv.start()
    _, _, report, _ = tls_report_of(sts)
    assert report["policies"][0]["summary"] == {"total-successful-session-count": 1, "total-failure-session-count": 0}


def test_a_tls_report_is_posted_to_an_https_address(sts):
    """RFC 8460 5.4: rua=https://... gets the gzip'd JSON POSTed as application/tlsrpt+gzip, over TLS
    with a certificate valid for the URL's host."""
    import gzip
    import json
    srv = sts["start"](tls_reports="yes", tls_report_interval="2s")
    sts["zone"].start(records(sts["web"].ip) +
                      ['_smtp._tls.sts.test. 1 IN TXT "v=TLSRPTv1; rua=https://mta-sts.sts.test/tlsrpt/v1?k=7"'])
    send(srv, ["bob@sts.test"])
    posts = wait_for(lambda: sts["web"].posts, what="the POST", timeout=30)
    host, path, ctype, body = posts[0]
    assert (host, path, ctype) == ("mta-sts.sts.test", "/tlsrpt/v1?k=7", "application/tlsrpt+gzip")
    report = json.loads(gzip.decompress(body))
    assert report["policies"][0]["summary"] == {"total-successful-session-count": 1, "total-failure-session-count": 0}
    wait_for(lambda: 'event=tls_report_posted domain=sts.test url="https://mta-sts.sts.test/tlsrpt/v1?k=7" status=200'
             in srv.log_text(), what="the log line")
    assert not [m for m in sts["peer"].messages if "tlsrpt" in str(m[1])]  # no mailto: in the record


def test_a_tls_report_post_tries_each_address_and_again_after_a_server_error(sts):
    """The URL's host has a dead IPv4 address (tried first) and ::1, whose server answers the first
    POST 503: each attempt goes on to ::1 past the dead address, and after the 503 the POST is made
    again a quarter of tls_report_interval later (1 s at least) - then 200."""
    dead = "127.0.253.9"
    srv = sts["start"](tls_reports="yes", tls_report_interval="4s")
    v6 = PolicyServer(sts["tmp"] / "web.pem", sts["tmp"] / "web.key", (200, "text/plain", ENFORCE), ip="::1",
                      fail_posts=1)
    sts["servers"].append(v6)
    zone = [x for x in records(sts["web"].ip) if sts["web"].ip not in x]
    sts["zone"].start(zone + [f"mta-sts.sts.test. 1 IN A {dead}", "mta-sts.sts.test. 1 IN AAAA ::1",
                              '_smtp._tls.sts.test. 1 IN TXT "v=TLSRPTv1; rua=https://mta-sts.sts.test/r"'])
    send(srv, ["bob@sts.test"])
    wait_for(lambda: 'event=tls_report_posted domain=sts.test url="https://mta-sts.sts.test/r" status=200'
             in srv.log_text(), what="the POST that succeeds", timeout=30)
    assert len(v6.posts) == 2 and v6.posts[0][3] == v6.posts[1][3]  # the same report, twice
    log = srv.log_text()
    assert 'event=tls_report_post_retry domain=sts.test url="https://mta-sts.sts.test/r" attempt=1 ' \
           'error="HTTP status 503" retry_in=1s' in log, log
    assert "tls_report_post_failed" not in log and sts["web"].posts == []
