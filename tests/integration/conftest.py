"""Black-box test harness: starts the real postern binary on a free loopback port with a
temporary configuration, talks SMTP to it over real sockets, and stops it by PID.

Every server started here is stopped with SIGTERM and must exit 0; its log must hold no
sanitizer report (the same suite runs against the ASan+UBSan build)."""
import base64
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("POSTERN_BIN", REPO / "build" / "postern")).resolve()
# ASan and valgrind keep freed memory: RSS bounds are checked on the plain release run only.
SANITIZED = "asan" in BIN.parts or bool(os.environ.get("POSTERN_VALGRIND"))
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


# The test DNS server (Debian's unbound, started once per test run on a free loopback port).
# It answers only the zones below, NXDOMAIN for everything else: no query ever leaves loopback.
DNS_ZONES = [
    "two-mx.test. MX 10 mx1.two-mx.test.", "two-mx.test. MX 20 mx2.two-mx.test.",
    "mx1.two-mx.test. A 127.0.0.2", "mx2.two-mx.test. A 127.0.0.3",
    "nullmx.test. MX 0 .", "nullmx-sender.test. MX 0 .",
    "a-only.test. A 127.0.0.2",
    "scripted.test. MX 10 mx.scripted.test.", "mx.scripted.test. A 127.0.0.4",
    "alias.test. CNAME a-only.test.",
    "v6only.test. AAAA ::1",
    "no-mail.test. SRV 0 0 25 mx.scripted.test.",  # exists, but has no MX and no address
    "mixed-null.test. MX 0 .", "mixed-null.test. MX 10 mx1.two-mx.test.",  # misconfigured: RFC 7505 3
    "xn--bcher-kva.test. MX 10 mx.scripted.test.",  # b\u00fccher.test: DNS holds the A-label only
    # a server named self.scripted.test (at the scripted peer's address) as best MX, and as backup MX
    "self.scripted.test. A 127.0.0.4", "loop.test. MX 10 self.scripted.test.",
    "backup.test. MX 10 mx1.two-mx.test.", "backup.test. MX 20 self.scripted.test.",
    "selfaddr.test. A 127.0.0.5",  # a name for an address this server may listen on
    # block lists (RFC 5782): 127.0.0.2 and ::1 listed; 127.0.0.3 gets the list's error code
    "2.0.0.127.dnsbl.test. A 127.0.0.2", "2.0.0.127.second.test. A 127.0.0.11",
    "3.0.0.127.dnsbl.test. A 127.255.255.254",
    "1." + "0." * 31 + "dnsbl.test. A 127.0.0.4",
    # SPF (RFC 7208), for a client at 127.0.0.1 (test_spf.py)
    'spf-pass.test. TXT "v=spf1 ip4:127.0.0.0/24 -all"', 'spf-fail.test. TXT "v=spf1 ip4:192.0.2.1 -all"',
    'spf-soft.test. TXT "v=spf1 ip6:2001:db8::/32 ~all"', 'spf-neutral.test. TXT "v=spf1 ?all"',
    'spf-mx.test. TXT "v=spf1 mx:two-mx.test mx -all"', "spf-mx.test. MX 10 mx.spf-mx.test.",
    "mx.spf-mx.test. A 127.0.0.1",
    'spf-a.test. TXT "v=spf1 a/24 -all"', "spf-a.test. A 127.0.0.9",
    'spf-include.test. TXT "v=spf1 include:spf-fail.test include:spf-pass.test -all"',
    'spf-redirect.test. TXT "v=spf1 redirect=spf-fail.test"',
    'spf-exists.test. TXT "v=spf1 exists:%{ir}.%{l}._spf.%{d} -all"', "1.0.0.127.carol._spf.spf-exists.test. A 127.0.0.2",
    # ptr: the resolver itself names 127.0.0.1 "localhost" (libunbound's built-in local zones)
    'spf-ptr.test. TXT "v=spf1 ptr:%{h} -all"', 'spf-ptr-other.test. TXT "v=spf1 ptr ?all"',
    'spf-syntax.test. TXT "v=spf1 ip4:127.0.0.1 foo -all"',
    'spf-two.test. TXT "v=spf1 +all"', 'spf-two.test. TXT "v=spf1 -all"',
    'spf-loop.test. TXT "v=spf1 include:spf-loop.test -all"',
    'spf-void.test. TXT "v=spf1 a:n1.spf-void.test a:n2.spf-void.test a:n3.spf-void.test +all"',
    'spf-deadinclude.test. TXT "v=spf1 include:servfail.test -all"',
    'spf-split.test. TXT "v=spf1 ip4:192.0.2.1" " ip4:127.0.0.1 -all"',
    # exp= (RFC 7208 6.2): the explanation of a fail; none from a record left by redirect=, none from
    # an include, none when the explanation name has two records or its text does not expand
    'spf-exp.test. TXT "v=spf1 ip4:192.0.2.1 exp=why.%{d} -all"',
    'why.spf-exp.test. TXT "%{i} is not a server of %{d}, see https://%{d}/spf?from=%{S}" " (%{c} at %{r})"',
    'spf-exp-via.test. TXT "v=spf1 exp=why.spf-exp.test redirect=spf-exp.test"',
    'spf-exp-left.test. TXT "v=spf1 exp=why.spf-exp.test redirect=spf-fail.test"',
    'spf-exp-inc.test. TXT "v=spf1 include:spf-exp.test -all"',
    'spf-exp-two.test. TXT "v=spf1 exp=two.spf-exp-two.test -all"',
    'two.spf-exp-two.test. TXT "one"', 'two.spf-exp-two.test. TXT "two"',
    'spf-exp-bad.test. TXT "v=spf1 exp=bad.spf-exp-bad.test -all"', 'bad.spf-exp-bad.test. TXT "100%"',
    'spf-fail-mx.test. TXT "v=spf1 ip4:192.0.2.1 -all"', "spf-fail-mx.test. MX 10 mx.spf-mx.test.",  # exists
    # DMARC (RFC 7489; test_dmarc.py)
    # aggregate reports (RFC 7489 7.2): catchall.test takes reports for dkim.test and pct0.test (RFC
    # 7489 7.1: it says so at <domain>._report._dmarc.catchall.test), other.test never agreed
    '_dmarc.dkim.test. TXT "v=DMARC1; p=reject; sp=quarantine; rua=mailto:dmarc@catchall.test,'
    'mailto:small@catchall.test!1k, mailto:r@other.test"',
    '_dmarc.spf-pass.test. TXT "v=DMARC1; p=none; aspf=s"',
    '_dmarc.pct0.test. TXT "v=DMARC1; p=reject; pct=0; rua=mailto:dmarc@catchall.test"',
    '_dmarc.catchall.test. TXT "v=DMARC1; p=none; rua=mailto:agg@catchall.test"',
    'dkim.test._report._dmarc.catchall.test. TXT "v=DMARC1"', 'pct0.test._report._dmarc.catchall.test. TXT "v=DMARC1;"',
    '_dmarc.broken.test. TXT "v=DMARC1; p=maybe"',
    '_dmarc.two-dmarc.test. TXT "v=DMARC1; p=reject"', '_dmarc.two-dmarc.test. TXT "v=DMARC1; p=none"',
    'spf-v6.test. TXT "v=spf1 ip6:2001:db8::/32 exists:%{ir}.%{v}.x.spf-v6.test -all"',
    "1" + ".0" * 31 + ".ip6.x.spf-v6.test. A 127.0.0.2",  # %{ir}.%{v} for ::1: its 32 nibbles reversed
]
DNS = {"port": None, "proc": None}


def start_test_dns(workdir: Path, attempts=5):
    """Starts unbound on a free port; a port taken meanwhile (UDP or TCP) means another try."""
    for _ in range(attempts):
        proc = try_start_unbound(workdir, free_udp_tcp_port())
        if proc:
            return proc
    raise RuntimeError("unbound did not start: " + (workdir / "unbound.log").read_text())


def try_start_unbound(workdir: Path, port):
    conf = workdir / "unbound.conf"
    lines = ["server:", f"  interface: 127.0.0.1", f"  port: {port}", "  do-daemonize: no", "  use-syslog: no",
             '  logfile: ""', '  username: ""', '  chroot: ""', f'  directory: "{workdir}"',
             f'  pidfile: "{workdir}/unbound.pid"', "  do-ip6: no", "  access-control: 127.0.0.0/8 allow",
             '  module-config: "iterator"', '  local-zone: "." static', '  local-zone: "servfail.test." always_refuse']
    lines += [f"  local-data: '{z}'" if '"' in z else f'  local-data: "{z}"' for z in DNS_ZONES]
    lines += ["remote-control:", "  control-enable: no"]
    conf.write_text("\n".join(lines) + "\n")
    log = open(workdir / "unbound.log", "ab")
    proc = subprocess.Popen(["unbound", "-d", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 10
    while time.time() < deadline:  # ready when it answers a query
        if proc.poll() is not None:
            return None
        if dns_answers(port):
            DNS.update(port=port, proc=proc)
            return proc
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    return None


def free_udp_tcp_port():
    """A port free for both UDP and TCP on 127.0.0.1 (unbound listens on both)."""
    while True:
        port = free_udp_port()
        with socket.socket() as t:
            try:
                t.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dns_answers(port):
    query = bytes.fromhex("12340100000100000000000004746573740000060001")  # test. SOA
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        try:
            s.sendto(query, ("127.0.0.1", port))
            return len(s.recv(512)) > 0
        except OSError:
            return False


# DKIM keys made for this test run, published under dkim.test by the test DNS server
# (test_dkim_verify.py): selector -> (algorithm, private key as python3-dkim takes it).
DKIM_KEYS = {}


def txt_strings(text):
    """A TXT record's text as zone-file strings of at most 250 octets each."""
    return " ".join(f'"{text[i:i + 250]}"' for i in range(0, len(text), 250))


def rsa_key(workdir, bits):
    """A new RSA key: (PKCS#1 PEM, base64 of its SubjectPublicKeyInfo)."""
    pem = workdir / f"rsa{bits}.pem"
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(pem), str(bits)], check=True,
                   capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(pem), "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return pem.read_bytes(), base64.b64encode(der).decode()


def make_dkim_keys(workdir):
    """Keys for dkim.test: rsa (2048 bits, its record split over strings), ed (Ed25519), tiny (512
    bits: too short), testing (t=y), strict (t=s), revoked (empty p=), and one under servfail.test."""
    import nacl.signing
    pem, pub = rsa_key(workdir, 2048)
    tiny_pem, tiny_pub = rsa_key(workdir, 512)
    seed = nacl.signing.SigningKey.generate()
    ed_pub = base64.b64encode(bytes(seed.verify_key)).decode()
    DKIM_KEYS.update(rsa=pem, tiny=tiny_pem, testing=pem, strict=pem, ed=base64.b64encode(bytes(seed)))
    DNS_ZONES.extend([
        "rsa._domainkey.dkim.test. TXT " + txt_strings(f"v=DKIM1; k=rsa; p={pub}"),
        f'ed._domainkey.dkim.test. TXT "v=DKIM1; k=ed25519; p={ed_pub}"',
        f'tiny._domainkey.dkim.test. TXT "v=DKIM1; p={tiny_pub}"',
        "testing._domainkey.dkim.test. TXT " + txt_strings(f"v=DKIM1; t=y; p={pub}"),
        "strict._domainkey.dkim.test. TXT " + txt_strings(f"v=DKIM1; t=s; p={pub}"),
        'revoked._domainkey.dkim.test. TXT "v=DKIM1; p="',
    ])


@pytest.fixture(scope="session", autouse=True)
def test_dns(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dns")
    make_dkim_keys(workdir)
    proc = start_test_dns(workdir)
    yield DNS
    proc.terminate()
    proc.wait(timeout=10)


_PORTS_GIVEN = set()


def free_port():
    """A loopback TCP port free now and not handed out before in this run: the kernel may give a
    port just closed again, and two picked one after the other (a server's listen and its
    submission_listen) must differ, or the server refuses the clash and does not start."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port


def open_path_for_server(root: Path):
    """Started as root, postern drops to the `postern` user: let that user reach its directories
    (pytest makes its temporary directories private to the user running the tests)."""
    if os.geteuid() != 0:
        return
    for p in [root, *root.parents]:
        if str(p) in ("/", "/tmp"):
            break
        os.chmod(p, os.stat(p).st_mode | 0o711)


class Server:
    """One postern process with its own directory, config and tables."""

    def __init__(self, root: Path, _preexec=None, **overrides):
        self.root = root
        self.preexec = _preexec
        open_path_for_server(root)
        self.port = free_port()
        self.mail_dir = root / "mail"
        self.spool_dir = root / "spool"
        (root / "recipients").write_text(
            "alice@example.test\nbob@example.test\nj\u00f6rg@example.test\n@catchall.test\n", encoding="utf-8")
        (root / "moved").write_text("carol@example.test carol@new.example\n")
        conf = {
            "hostname": "mx.example.test",
            "listen": f"127.0.0.1:{self.port}",
            "mail_dir": str(self.mail_dir),
            "spool_dir": str(self.spool_dir),
            "local_domains": "example.test, catchall.test, localhost",
            "recipients": str(root / "recipients"),
            "moved": str(root / "moved"),
            "null_mx_domains": "nullmx.test",
            "shutdown_grace": "2s",
            "greet_delay": "0",
            "dns_resolver": f"127.0.0.1@{DNS['port']}",
            "log_level": "debug",
            "journal_size": "4M",  # the 64M default is zero-filled at every fresh start: slow, big
        }
        conf.update({k: str(v) for k, v in overrides.items()})
        conf["listen"] = conf["listen"].replace("{port}", str(self.port))  # more listeners beside self.port
        self.mail_dir, self.spool_dir = Path(conf["mail_dir"]), Path(conf["spool_dir"])
        self.conf_path = root / "postern.conf"
        self.conf_path.write_text("".join(f"{k} = {v}\n" for k, v in conf.items()))
        self.log_path = root / "postern.log"
        self.proc = None
        self.starts = 0
        self.quiet = conf["log_level"] not in ("debug", "info")  # no event=started line to wait for

    def start(self):
        self.log = open(self.log_path, "ab")
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0")
        cmd = [str(BIN), "-c", str(self.conf_path)]
        if os.environ.get("POSTERN_VALGRIND"):  # make memcheck
            cmd = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite", "--vgdb=no"] + cmd
        self.proc = subprocess.Popen(cmd, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env, preexec_fn=self.preexec)
        deadline = time.time() + (60 if os.environ.get("POSTERN_VALGRIND") else 10)
        while time.time() < deadline:
            if self.proc.poll() is not None:
                text = self.log_text()
                if self.starts == 0 and f'address=127.0.0.1:{self.port} error="Address already in use"' in text:
                    self.log.close()
                    raise PortTaken(text)
                raise RuntimeError("postern exited at start:\n" + text)
            try:  # the port listens before start-up work (journal recovery) is done: wait for both
                self._probe_connection()
                if self.quiet or self.log_text().count("event=started ") > self.starts:
                    self.starts += 1
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("postern did not listen:\n" + self.log_text())

    def _probe_connection(self):
        """Connects, half-closes and reads until the server closes: when this returns, the server
        has accepted the probe and released its connection slot, so a test that counts connections
        (max_connections) never races the probe's disconnect."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as probe:
            probe.shutdown(socket.SHUT_WR)
            probe.settimeout(10)
            try:
                while probe.recv(4096):
                    pass
            except ConnectionResetError:
                pass

    def stop(self, expect_code=0):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("postern did not stop on SIGTERM")
        self.log.close()
        text = self.log_text()
        for mark in SANITIZER_MARKS:
            assert mark not in text, "sanitizer report in server log:\n" + text[-4000:]
        assert self.proc.returncode == expect_code, f"exit code {self.proc.returncode}:\n{text[-2000:]}"

    def kill9(self):
        """SIGKILL, as a crash or power cut would stop it; start() runs it again on the same dirs."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def maildir_files(self, address):
        local, domain = address.rsplit("@", 1)
        new = self.mail_dir / domain.lower() / local / "new"
        return sorted(new.iterdir()) if new.is_dir() else []

    def all_delivered(self):
        return sorted(self.mail_dir.glob("*/*/new/*"))

    def connect(self, greet=True):
        c = Client(self.port)
        if greet:
            code, _ = c.reply()
            assert code == 220
        return c


class Client:
    """A raw SMTP client: sends exact bytes, reads exact replies."""

    def __init__(self, port, host="127.0.0.1", source=None):
        self.sock = socket.create_connection((host, port), timeout=10, source_address=(source, 0) if source else None)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed; pending: %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        """Reads one (possibly multi-line) reply: (code, [text lines])."""
        lines = []
        while True:
            line = self._line()
            assert len(line) >= 3 and line[:3].isdigit(), f"malformed reply line {line!r}"
            lines.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return int(line[:3]), lines

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def expect(self, line, code, text=None):
        got, lines = self.cmd(line)
        assert got == code, f"{line!r}: got {got} {lines}, expected {code}"
        if text is not None:
            assert text in lines[-1], f"{line!r}: {lines[-1]!r} lacks {text!r}"
        return lines

    def closed(self, timeout=5):
        """True when the server closed the connection (EOF) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def trickle(client, data, pause=0.5):
    """Sends data one byte every pause seconds until the server closes the connection (or all is
    sent); returns the seconds it took. A slow client the server must not keep for ever."""
    start = time.time()
    client.sock.settimeout(10)
    for ch in data:
        try:
            client.send(bytes([ch]))
        except OSError:
            break
        time.sleep(pause)
        if client.closed(timeout=0.01):
            break
    return time.time() - start


def wait_for(pred, timeout=15, what="condition"):
    """Polls pred until it returns something true (returned), or fails after timeout seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def check_config(conf):
    """postern -c conf check-config: the finished process (returncode, stdout, stderr as text)."""
    return subprocess.run([str(BIN), "-c", str(conf), "check-config"], capture_output=True, text=True)


class PortTaken(RuntimeError):
    """A first start found its own listen port taken since free_port() chose it - by a connection of
    one of the test runs beside this one (release, ASan and valgrind run at once), whose kernel-chosen
    local port it became: make_server starts it again on another port."""


def sighup_and_wait(srv, event):
    """Sends SIGHUP (reload) and waits for the next log line with event=<event>."""
    before = srv.log_text().count(f"event={event}")
    srv.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: srv.log_text().count(f"event={event}") > before, what=f"event={event}")


@pytest.fixture
def make_server(tmp_path):
    """Factory: make_server(**config overrides) -> started Server; all are stopped at teardown."""
    servers = []

    def factory(**overrides):
        for attempt in range(3):
            root = tmp_path / (f"srv{len(servers)}" + (f"-{attempt}" if attempt else ""))
            root.mkdir()
            try:
                srv = Server(root, **overrides).start()
            except PortTaken:
                if attempt == 2:
                    raise
                continue
            servers.append(srv)
            return srv

    yield factory
    for srv in servers:
        srv.stop()


@pytest.fixture
def silent_resolver():
    """A "resolver" on loopback that takes every query and answers none; yields its address for
    dns_resolver (127.0.0.1@port)."""
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", 0))
    yield f"127.0.0.1@{hole.getsockname()[1]}"
    hole.close()


@pytest.fixture
def server(make_server):
    return make_server()
