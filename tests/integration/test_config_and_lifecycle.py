"""Configuration errors name file, line and key; check-config; SIGTERM handling; README coverage."""
import os
import pwd
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, REPO, Server, free_port, open_path_for_server, sighup_and_wait, wait_for


def check_config(path):
    return subprocess.run([str(BIN), "check-config", "-c", str(path)], capture_output=True, text=True, timeout=10)


def write_conf(tmp_path, text):
    p = tmp_path / "bad.conf"
    p.write_text(text)
    return p


def test_check_config_ok_for_shipped_config():
    out = subprocess.run([str(BIN), "check-config", "-c", "etc/postern.conf"], cwd=REPO, capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout


def test_unknown_key_names_file_line_key(tmp_path):
    p = write_conf(tmp_path, "# comment\nhostname = mx.example.test\n\nlisen = 127.0.0.1:2525\n"
                             "Max_Recipent = 5\nfrobnicate = yes\n")
    out = check_config(p)
    assert out.returncode != 0
    assert f"{p}:4: lisen: unknown key (did you mean listen?)" in out.stderr
    assert f"{p}:5: Max_Recipent: unknown key (did you mean max_recipients?)" in out.stderr
    assert f"{p}:6: frobnicate: unknown key\n" in out.stderr  # nothing close: no guess


def test_bad_values_all_reported(tmp_path):
    p = write_conf(tmp_path, "max_recipients = lots\nlisten = localhost\naccept_mail = maybe\n"
                             "relay_networks = 10.0.0.0/33\nmax_message_size = 12Q\nlocal_domains = bad_domain!\n"
                             "max_recipients = 5\nthis is not a key value line\n")
    out = check_config(p)
    assert out.returncode != 0
    for line, key in [(1, "max_recipients"), (2, "listen"), (3, "accept_mail"), (4, "relay_networks"),
                      (5, "max_message_size"), (6, "local_domains"), (7, "max_recipients")]:
        assert f"{p}:{line}: {key}:" in out.stderr, out.stderr
    assert f"{p}:8:" in out.stderr


def test_an_address_listened_on_twice_is_a_config_error(tmp_path):
    """Before, check-config said ok and the server stopped at start-up with "Address already in use"."""
    p = write_conf(tmp_path, "listen = 127.0.0.1:2600, 0.0.0.0:2601, 127.0.0.1:2601, [::1]:2600\n"
                             "submission_listen = 127.0.0.1:2600\nsmtps_listen = [::]:2600\n")
    out = check_config(p)
    assert out.returncode != 0
    assert (f"{p}:1: listen: 127.0.0.1:2601 clashes with 0.0.0.0:2601 (listen, line 1): an address and port "
            "can be listened on once") in out.stderr
    assert f"{p}:2: submission_listen: 127.0.0.1:2600 clashes with 127.0.0.1:2600 (listen, line 1)" in out.stderr
    assert f"{p}:3: smtps_listen: [::]:2600 clashes with [::1]:2600 (listen, line 1)" in out.stderr
    assert out.stderr.count("clashes") == 3  # 127.0.0.1:2600 and [::1]:2600: other families, no clash
    p = write_conf(tmp_path, "submission_listen = 127.0.0.1:2525\n")
    assert "submission_listen: 127.0.0.1:2525 clashes with 127.0.0.1:2525 (listen's default)" in check_config(p).stderr


def test_relay_network_with_host_bits_is_warned_about(tmp_path):
    """10.0.0.1/8 lets all of 10.0.0.0/8 relay: likely a typo for one host; said, not refused."""
    p = write_conf(tmp_path, "relay_networks = 10.0.0.1/8, 192.0.2.0/24, 2001:db8::5/64, 127.0.0.1\n")
    out = check_config(p)
    assert out.returncode == 0, out.stderr
    assert ('key=relay_networks detail="10.0.0.1/8 has host bits set: it means 10.0.0.0/8, every address of it '
            'may relay; write 10.0.0.0/8, or the address alone for one host"') in out.stderr
    assert "2001:db8::5/64 has host bits set: it means 2001:db8::/64" in out.stderr
    assert out.stderr.count("has host bits set") == 2
    assert "open relay" not in out.stderr
    out = check_config(write_conf(tmp_path, "relay_networks = 127.0.0.0/8, ::/0\n"))
    assert out.returncode == 0 and 'detail="::/0 takes in every address: anyone who can connect may relay' in out.stderr


def test_unreadable_table_names_config_line_and_key(tmp_path):
    p = write_conf(tmp_path, "local_domains = example.test\n\nrecipients = /nonexistent/recipients\n")
    out = check_config(p)
    assert out.returncode != 0
    assert f"{p}:3: recipients: cannot read table /nonexistent/recipients" in out.stderr


ROOT_DS = ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n"


@pytest.mark.parametrize("case", ["CA file missing", "CA file not PEM", "trust anchor missing",
                                  "trust anchor not DNS records"])
def test_unusable_ca_file_or_trust_anchor_is_a_config_error(tmp_path, case):
    """The outbound CA file (smtp_tls_verify) and the DNSSEC trust anchor are read by check-config
    and before the server starts, like the other files: an error names the config file, line, key
    and the file. (Before, check-config said ok and the server failed after it had bound its ports,
    naming no line - or, for the trust anchor, the wrong key.)"""
    ca, anchor = tmp_path / "ca.pem", tmp_path / "root.key"
    ca.write_text("not a certificate\n")
    anchor.write_text("not a DS record\n")
    missing = tmp_path / "nonexistent"
    path, key, reason = {"CA file missing": (missing, "smtp_tls_ca_file", "No such file"),
                         "CA file not PEM": (ca, "smtp_tls_ca_file", "no certificate"),
                         "trust anchor missing": (missing, "dns_trust_anchor", "No such file"),
                         "trust anchor not DNS records": (anchor, "dns_trust_anchor", "no usable DS")}[case]
    line = 5 if key == "smtp_tls_ca_file" else 4
    p = write_conf(tmp_path, f"listen = 127.0.0.1:{free_port()}\nmail_dir = {tmp_path}/mail\n"
                             f"spool_dir = {tmp_path}/spool\n"
                             + (f"smtp_tls_verify = yes\n{key} = {path}\n" if line == 5 else f"{key} = {path}\n"))
    out = check_config(p)
    assert out.returncode != 0
    assert f"{p}:{line}: {key}: cannot " in out.stderr and str(path) in out.stderr and reason in out.stderr, \
        out.stderr
    started = subprocess.run([str(BIN), "-c", str(p)], capture_output=True, text=True, timeout=10)
    assert started.returncode != 0 and f"{p}:{line}: {key}: cannot " in started.stderr
    assert "event=listening" not in started.stderr  # found before any port is bound


def test_usable_trust_anchor_passes_check_config(tmp_path):
    anchor = tmp_path / "root.key"
    anchor.write_text(ROOT_DS)
    p = write_conf(tmp_path, f"dns_trust_anchor = {anchor}\n")
    out = check_config(p)
    assert out.returncode == 0, out.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the server reads the file again as its own user")
def test_trust_anchor_unreadable_by_the_servers_user_names_the_key(tmp_path):
    """check-config, run as root, can read a root-only trust anchor; the server reads it after
    dropping to its user: it stops with the key and the reason, not a resolver failure."""
    open_path_for_server(tmp_path)
    anchor = tmp_path / "root.key"
    anchor.write_text(ROOT_DS)
    anchor.chmod(0o600)
    p = write_conf(tmp_path, f"listen = 127.0.0.1:{free_port()}\nmail_dir = {tmp_path}/mail\n"
                             f"spool_dir = {tmp_path}/spool\ndns_trust_anchor = {anchor}\n")
    assert check_config(p).returncode == 0
    started = subprocess.run([str(BIN), "-c", str(p)], capture_output=True, text=True, timeout=10)
    assert started.returncode != 0
    assert f'key=dns_trust_anchor error="cannot read {anchor}: Permission denied"' in started.stderr, started.stderr


def test_table_syntax_error_names_table_line(tmp_path):
    t = tmp_path / "rcpts"
    t.write_text("alice@example.test\n# fine\nnot an address\nbob@@example.test\nzed@other.test\n")
    p = write_conf(tmp_path, f"local_domains = example.test\nrecipients = {t}\n")
    out = check_config(p)
    assert out.returncode != 0
    assert f"{t}:3: recipients:" in out.stderr
    assert f"{t}:4: recipients: invalid address" in out.stderr
    assert f"{t}:5: recipients: domain is not in local_domains" in out.stderr


def test_server_refuses_to_start_on_bad_config(tmp_path):
    p = write_conf(tmp_path, "max_errors = 0\n")
    out = subprocess.run([str(BIN), "-c", str(p)], capture_output=True, text=True, timeout=10)
    assert out.returncode == 1
    assert f"{p}:1: max_errors: value out of range (1 to 1000)" in out.stderr


def test_missing_config_file(tmp_path):
    out = subprocess.run([str(BIN), "-c", str(tmp_path / "nope.conf")], capture_output=True, text=True, timeout=10)
    assert out.returncode == 1 and "nope.conf: cannot read" in out.stderr


def test_port_in_use_is_a_clear_error(server, tmp_path):
    p = write_conf(tmp_path, f"listen = 127.0.0.1:{server.port}\nmail_dir = {tmp_path}/m\nspool_dir = {tmp_path}/s\n")
    out = subprocess.run([str(BIN), "-c", str(p)], capture_output=True, text=True, timeout=10)
    assert out.returncode == 1
    assert "key=listen" in out.stderr and f"127.0.0.1:{server.port}" in out.stderr


def test_threads_are_named_for_top_and_perf(server):
    """Each helper thread says what it does in top -H, ps -L and perf: disk work, commit, files, checkpoint."""
    names = [(t / "comm").read_text().strip() for t in Path(f"/proc/{server.proc.pid}/task").iterdir()]
    helpers = sorted(set(n for n in names if n.startswith("postern-")))
    assert helpers == ["postern-ckpt", "postern-commit", "postern-disk", "postern-files"]
    assert names.count("postern-commit") == 1


def test_version_and_help(server):
    """--version names the build (the git commit, -dirty with local changes), as the start-up line
    does, for bug reports; --help prints the usage on stdout and succeeds; a wrong word is status 2."""
    out = subprocess.run([str(BIN), "--version"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and re.fullmatch(r"postern ([0-9a-f]{7,40}(-dirty)?|unknown)\n", out.stdout), out
    version = out.stdout.split()[1]
    assert f"event=started version={version} " in server.log_text()
    out = subprocess.run([str(BIN), "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and out.stdout.startswith("usage: postern") and "--version" in out.stdout
    out = subprocess.run([str(BIN), "--frobnicate"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 2 and out.stderr.startswith("usage: postern") and not out.stdout


def test_sigterm_idle_exits_zero(tmp_path):
    srv = Server(tmp_path).start()
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    srv.proc.send_signal(signal.SIGTERM)
    code, lines = c.reply()
    assert code == 421 and "4.3.2" in lines[0]
    srv.proc.wait(timeout=10)
    srv.stop(expect_code=0)


def test_sigterm_lets_transaction_in_progress_finish(tmp_path):
    srv = Server(tmp_path, shutdown_grace="5s").start()
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<s@sender.example>", 250)
    c.expect("RCPT TO:<alice@example.test>", 250)
    c.expect("DATA", 354)
    c.send(b"Subject: in flight\r\n\r\npart one\r\n")
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert srv.proc.poll() is None  # still serving the transaction
    c.send(b"part two\r\n.\r\n")
    assert c.reply()[0] == 250
    code, lines = c.reply()  # then the shutdown notice
    assert code == 421 and "4.3.2" in lines[0]
    srv.proc.wait(timeout=10)
    srv.stop(expect_code=0)
    assert len(srv.maildir_files("alice@example.test")) == 1


def test_sigterm_grace_over_gives_421(tmp_path):
    srv = Server(tmp_path, shutdown_grace="1s").start()
    c = srv.connect()
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<s@sender.example>", 250)
    srv.proc.send_signal(signal.SIGTERM)
    code, lines = c.reply()
    assert code == 421 and "4.3.2" in lines[0]
    srv.proc.wait(timeout=10)
    srv.stop(expect_code=0)


def reload(srv, event):
    sighup_and_wait(srv, event)
    assert srv.proc.poll() is None


def test_sighup_reloads_tables_without_cutting_sessions(make_server):
    srv = make_server()  # stopped by the fixture even when an assertion fails
    c = srv.connect()  # a session in the middle of a transaction across every reload
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<s@sender.example>", 250)
    c.expect("RCPT TO:<newcomer@example.test>", 550, "5.1.1")
    c.expect("RCPT TO:<alice@example.test>", 250)
    rcpts = srv.root / "recipients"
    rcpts.write_text(rcpts.read_text() + "newcomer@example.test\n")
    (srv.root / "moved").write_text("carol@example.test carol@new.example\nalice2@example.test alice@example.test\n")
    reload(srv, "reloaded")
    c.expect("RCPT TO:<newcomer@example.test>", 250)
    c.expect("RCPT TO:<alice2@example.test>", 551, "5.1.6")
    # a broken edit changes nothing: each error is logged with its file and line
    rcpts.write_text(rcpts.read_text().replace("newcomer@example.test", "newcomer@example.test\nnot an address"))
    reload(srv, "reload_failed")
    assert f"{rcpts}:6: recipients: expected one address per line" in srv.log_text()
    c.expect("RCPT TO:<newcomer@example.test>", 250)
    # a key a reload cannot apply is named; the rest is applied
    rcpts.write_text("alice@example.test\nnewcomer@example.test\n")
    conf = srv.conf_path.read_text().replace("catchall.test, ", "")
    conf = conf.replace("log_level = debug", "log_level = warn")
    srv.conf_path.write_text(conf.replace("recipients = ", "max_recipients = 7\nrecipients = ", 1))
    reload(srv, "reload_needs_restart")
    assert "event=reload_needs_restart keys=max_recipients " in srv.log_text()
    c.expect("RCPT TO:<bob@example.test>", 550, "5.1.1")
    c.expect("RCPT TO:<someone@catchall.test>", 551, "5.7.1")  # no longer a local domain
    c.expect("RCPT TO:<x@localhost>", 550, "5.1.1")
    connects = srv.log_text().count("event=connect ")
    srv.connect().expect("QUIT", 221)  # log_level = warn now: no connect line
    assert srv.log_text().count("event=connect ") == connects
    c.expect("DATA", 354)
    c.expect("Subject: across reloads\r\n\r\nbody\r\n.", 250)
    srv.stop(expect_code=0)
    assert len(srv.maildir_files("newcomer@example.test")) == 1
    assert len(srv.maildir_files("alice@example.test")) == 1


def test_readme_documents_every_config_key():
    ref = subprocess.run([str(BIN), "config-reference"], capture_output=True, text=True, timeout=10).stdout
    keys = [line.split()[0] for line in ref.splitlines() if line.strip()]
    assert len(keys) >= 20
    readme = (REPO / "README.md").read_text()
    missing = [k for k in keys if f"`{k}`" not in readme]
    assert missing == []


def test_readme_reply_table_matches_catalog():
    """Every row of src/reply.def with an enhanced code appears in the README reply table."""
    rows = re.findall(r'^R\(\w+,\s*(\d{3}),\s*"([0-9.]*)"', (REPO / "src" / "reply.def").read_text(), re.M)
    readme = (REPO / "README.md").read_text()
    missing = [f"{c} {e}" for c, e in rows if e and f"| {c} | {e} |" not in readme]
    assert missing == []


def test_ipv6_listener(tmp_path):
    port = free_port()
    srv = Server(tmp_path, listen=f"[::1]:{port}")
    srv.port = port
    srv.proc = subprocess.Popen([str(BIN), "-c", str(srv.conf_path)], stdout=open(srv.log_path, "wb"),
                                stderr=subprocess.STDOUT)
    srv.log = open(srv.log_path, "ab")
    import socket
    deadline = time.time() + 10
    while True:
        try:
            s = socket.create_connection(("::1", port), timeout=1)
            break
        except OSError:
            assert time.time() < deadline
            time.sleep(0.05)
    assert s.recv(100).startswith(b"220 ")
    # postmaster at this host's IPv6 address literal (another spelling of ::1) is this host's postmaster
    s.sendall(b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.test>\r\n"
              b"RCPT TO:<postmaster@[IPv6:0:0::1]>\r\nRCPT TO:<bob@[IPv6:::1]>\r\nDATA\r\nx\r\n.\r\n")
    data = b""
    while b"queued as" not in data:
        chunk = s.recv(4096)
        assert chunk, data
        data += chunk
    replies = [line[:3] for line in data.split(b"\r\n") if line[3:4] == b" "]
    assert replies == [b"250", b"250", b"250", b"250", b"550", b"354", b"250"], data
    s.close()
    srv.stop()
    text = srv.maildir_files("alice@example.test")[0].read_text()
    assert "from c.example ([IPv6:::1])" in text
    assert len(srv.maildir_files("postmaster@example.test")) == 1


def test_range_errors_name_the_bounds_in_the_keys_units(tmp_path):
    p = write_conf(tmp_path, "dns_timeout = 1h\njournal_size = 1k\n")
    out = subprocess.run([str(BIN), "check-config", "-c", str(p)], capture_output=True, text=True, timeout=10)
    assert out.returncode == 1
    assert f"{p}:1: dns_timeout: value out of range (1s to 1m): '1h'" in out.stderr
    assert f"{p}:2: journal_size: value out of range (1M to 16G): '1k'" in out.stderr


def test_second_server_on_the_same_spool_refuses_to_start(make_server, tmp_path):
    """A second server on a running server's spool (another listen address) would empty its tmp/,
    replay its journal and run a second queue manager: it must stop before touching anything."""
    first = make_server()
    in_flight = first.spool_dir / "tmp" / "being-written"
    in_flight.write_text("a queue file between stage and publish")
    (tmp_path / "second").mkdir()
    second = Server(tmp_path / "second", mail_dir=first.mail_dir, spool_dir=first.spool_dir)
    out = subprocess.run([str(BIN), "-c", str(second.conf_path)], capture_output=True, text=True, timeout=20)
    assert out.returncode == 1
    assert f"another postern (pid {first.proc.pid}) runs on this spool" in out.stderr
    assert in_flight.exists()  # the start stopped before its spool recovery
    pid_file = first.spool_dir / "postern.pid"
    assert pid_file.read_text() == f"{first.proc.pid}\n"
    if os.geteuid() == 0:  # made by root, then given to the server's user: a start as that user opens it too
        assert pid_file.stat().st_uid == pwd.getpwnam("postern").pw_uid
    c = first.connect()
    c.expect("EHLO client.test", 250)
    c.close()


def test_queue_command_never_signals_a_stale_pid(make_server):
    """After the server stopped, spool_dir/postern.pid still names its pid, which the system may
    have given to another program: `postern queue` must not signal it (SIGUSR1 would end it)."""
    srv = make_server()
    srv.stop()
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        (srv.spool_dir / "postern.pid").write_text(f"{bystander.pid}\n")
        out = subprocess.run([str(BIN), "-c", str(srv.conf_path), "queue", "flush"], capture_output=True, text=True,
                             timeout=10)
        assert out.returncode == 1 and "no server runs on" in out.stderr
        time.sleep(0.2)
        assert bystander.poll() is None, "postern queue signalled a process that is not the server"
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the command as another user")
def test_queue_list_as_a_user_who_cannot_read_the_spool_says_so(make_server):
    """spool_dir is the server user's (0700): for anyone else "0 messages in the queue" would be a
    lie about a queue that may be full."""
    srv = make_server()
    nobody = pwd.getpwnam("nobody")

    def as_nobody():
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
    out = subprocess.run([str(BIN), "-c", str(srv.conf_path), "queue", "list"], capture_output=True, text=True,
                         timeout=10, preexec_fn=as_nobody)
    assert out.returncode == 1, out.stdout
    assert "cannot read" in out.stderr and "Permission denied" in out.stderr
    assert "messages in the queue" not in out.stdout


def test_check_config_warns_about_a_hostname_that_is_not_fully_qualified(tmp_path):
    (tmp_path / "rcpts").write_text("alice@example.test\n")
    tables = f"local_domains = example.test\nrecipients = {tmp_path / 'rcpts'}\n"
    short = check_config(write_conf(tmp_path, "hostname = localhost\n" + tables))
    assert short.returncode == 0 and short.stdout.endswith(": ok\n")
    assert "key=hostname detail=\"'localhost' is not a fully qualified domain name" in short.stderr
    full = check_config(write_conf(tmp_path, "hostname = mx.example.test\n" + tables))
    assert full.returncode == 0 and full.stderr == ""


def test_systemd_is_told_ready_reloading_and_stopping(make_server, tmp_path, monkeypatch):
    """Type=notify: READY=1 (with MAINPID) once the server takes connections, RELOADING=1 then
    READY=1 around a SIGHUP - a failed reload says so in STATUS= - and STOPPING=1 on SIGTERM."""
    import socket
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    os.chmod(path, 0o777)  # the server writes to it after dropping to its user
    sock.settimeout(10)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    srv = make_server()

    def message():
        return dict(line.split("=", 1) for line in sock.recv(4096).decode().splitlines())
    ready = message()
    assert ready["READY"] == "1" and ready["MAINPID"] == str(srv.proc.pid), ready
    srv.connect().expect("QUIT", 221)  # it answers once it said ready
    srv.proc.send_signal(signal.SIGHUP)
    assert "RELOADING" in message() and message() == {"READY": "1", "STATUS": "configuration reloaded"}
    conf = srv.conf_path.read_text()
    srv.conf_path.write_text(conf + "max_recipients = many\n")
    srv.proc.send_signal(signal.SIGHUP)
    assert "RELOADING" in message()
    failed = message()
    assert failed["READY"] == "1" and failed["STATUS"].startswith("reload failed (1 errors"), failed
    srv.conf_path.write_text(conf)
    srv.proc.send_signal(signal.SIGTERM)
    assert message()["STOPPING"] == "1"
    srv.stop()
    sock.close()


def test_make_install_lays_out_a_working_service(tmp_path):
    """make install: the binary, a configuration that passes check-config as installed, a unit file
    systemd-analyze accepts; a second install keeps the administrator's edited configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE") and k != "MFLAGS"}
    dirs = [f"PREFIX={tmp_path}/usr", f"SYSCONFDIR={tmp_path}/etc", f"UNITDIR={tmp_path}/unit"]
    run = subprocess.run(["make", "-s", "install", *dirs], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    sbin, conf, unit = tmp_path / "usr/sbin/postern", tmp_path / "etc/postern/postern.conf", tmp_path / "unit/postern.service"
    assert subprocess.run([str(sbin), "--version"], capture_output=True, timeout=10).returncode == 0
    check = subprocess.run([str(sbin), "check-config", "-c", str(conf)], capture_output=True, text=True, timeout=10)
    assert check.returncode == 0, check.stderr
    assert f"recipients = {tmp_path}/etc/postern/recipients" in conf.read_text()
    text = unit.read_text()
    assert "Type=notify" in text and f"ExecStart={sbin} -c {conf}\n" in text
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    conf.write_text(conf.read_text() + "# edited by the administrator\n")
    run = subprocess.run(["make", "-s", "install", *dirs], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0 and conf.read_text().endswith("# edited by the administrator\n")


def test_show_config_prints_the_effective_values_and_reads_back_the_same(tmp_path):
    """postern show-config: every key as the server would run with it (defaults filled in), as a
    file would write it; -n only the keys the file sets, like postconf -n. Its output is a
    configuration that gives the same output again."""
    conf = tmp_path / "p.conf"
    conf.write_text("hostname = mx.example.test\nretry_schedule = 60s,7200\nmax_message_size = 10485760\n")
    run = lambda *args: subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=10)  # noqa: E731
    set_only = run("-c", str(conf), "show-config", "-n")
    assert set_only.returncode == 0, set_only.stderr
    assert set_only.stdout == "hostname = mx.example.test\nmax_message_size = 10M\nretry_schedule = 1m, 2h\n"
    full = run("-c", str(conf), "show-config")
    keys = [line.split()[0] for line in run("config-reference").stdout.splitlines()]
    assert [line.split(" =")[0] for line in full.stdout.splitlines()] == keys
    assert "\nmax_recipients = 1000\n" in full.stdout and "\nrelay_networks =\n" in full.stdout
    again = tmp_path / "again.conf"
    again.write_text(full.stdout)
    assert run("-c", str(again), "show-config").stdout == full.stdout
    conf.write_text("max_recipients = many\n")
    bad = run("-c", str(conf), "show-config")
    assert bad.returncode == 1 and f"{conf}:1: max_recipients" in bad.stderr and not bad.stdout
