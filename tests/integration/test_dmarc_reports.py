"""DMARC aggregate reports (dmarc_reports, RFC 7489 7.2) through the real binary: mail whose From
domains publish DMARC records with rua= (conftest: dkim.test, pct0.test and catchall.test report to
addresses in catchall.test, which agrees to take dkim.test's and pct0.test's by DNS as RFC 7489 7.1
asks; other.test never agreed) is sent with smtplib; each period's reports are delivered to those
addresses (catchall.test is local here), and the gzip'd XML is read with the standard library."""
import email
import email.policy
import gzip
import re
import smtplib
import time
import xml.etree.ElementTree as ET

from conftest import check_config, free_port, wait_for
from test_dkim_verify import signed
from test_dmarc import text
from test_metrics import values


def send(srv, sender, message):
    """Sends to alice@example.test; the reply code of the data (250, or a DMARC refusal's 550)."""
    try:
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as c:
            c.sendmail(sender, ["alice@example.test"], message)
        return 250
    except smtplib.SMTPDataError as e:
        return e.smtp_code


def reports_for(srv, address, n=1, timeout=20):
    """The first n reports delivered to address: (message, its XML root, the attachment's name)."""
    files = wait_for(lambda: srv.maildir_files(address)[n - 1:] and srv.maildir_files(address), timeout=timeout,
                     what=f"{n} report(s) to {address}")
    found = []
    for f in files[:n]:
        msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        (part,) = [p for p in msg.iter_attachments() if p.get_content_type() == "application/gzip"]
        found.append((msg, ET.fromstring(gzip.decompress(part.get_content())), part.get_filename()))
    return found


def rows(root):
    """Each <record> as a flat tuple: source, count, disposition, dkim, spf, reason, header_from,
    the DKIM results (domain, selector, result) and the SPF result (domain, scope, result)."""
    out = set()
    for r in root.findall("record"):
        pe = r.find("row/policy_evaluated")
        dkim = tuple((d.findtext("domain"), d.findtext("selector"), d.findtext("result"))
                     for d in r.findall("auth_results/dkim"))
        (spf,) = r.findall("auth_results/spf")
        out.add((r.findtext("row/source_ip"), int(r.findtext("row/count")), pe.findtext("disposition"),
                 pe.findtext("dkim"), pe.findtext("spf"), pe.findtext("reason/type"),
                 r.findtext("identifiers/header_from"), dkim,
                 (spf.findtext("domain"), spf.findtext("scope"), spf.findtext("result"))))
    return out


def test_a_period_over_during_a_stop_is_reported_at_the_next_start(make_server):
    """The day's counts, kept across a stop (spool_dir/dmarc-report), reported at the start that
    finds their period over: one report per policy domain, to the rua= addresses that agreed and
    whose size limit the report keeps; the rows say what was received and what was done with it."""
    if time.time() % 3600 > 3590:  # the sending within one period of an hour
        time.sleep(3600 - time.time() % 3600 + 0.5)
    mport = free_port()
    srv = make_server(dkim_verify="yes", spf_policy="header", dmarc_policy="reject", dmarc_reports="yes",
                      dmarc_report_interval="1h", dmarc_report_organization="Example & Co",
                      metrics_listen=f"127.0.0.1:{mport}")
    good = signed("rsa", text("carol@dkim.test")) + text("carol@dkim.test")
    assert send(srv, "carol@elsewhere.example", good) == 250  # DKIM aligned: pass
    assert send(srv, "carol@elsewhere.example", good) == 250  # the same row, counted twice
    assert send(srv, "carol@spf-pass.test", text("carol@dkim.test")) == 550  # p=reject: refused
    assert send(srv, "carol@elsewhere.example", text("x@news.dkim.test")) == 250  # sp=quarantine, at dkim.test
    assert send(srv, "carol@elsewhere.example", text("carol@pct0.test")) == 250  # pct=0: sampled out
    assert send(srv, "carol@spf-pass.test", text("carol@catchall.test")) == 250  # p=none
    assert send(srv, "carol@spf-pass.test", text("carol@spf-pass.test")) == 250  # a record without rua=
    srv.stop()
    state = srv.spool_dir / "dmarc-report"
    head, *lines = state.read_text().splitlines()
    start = int(head.split()[2])
    assert head == f"postern-dmarc-report 1 {start} 3600" and start % 3600 == 0, head
    assert "D dkim.test r r reject quarantine 100" in lines and "D spf-pass.test r s none none 100" in lines, lines
    state.write_text(state.read_text().replace(f" {start} 3600", f" {start - 3600} 3600", 1))  # that period is over
    srv.start()
    assert "event=dmarc_report_state_loaded" in srv.log_text() and "domains=4 complete=yes" in srv.log_text()

    (msg, root, filename), = [r for r in reports_for(srv, "dmarc@catchall.test", 2)
                              if r[1].findtext("policy_published/domain") == "dkim.test"]
    assert msg["From"].addresses[0].addr_spec == "postmaster@mx.example.test"
    assert msg["To"].addresses[0].addr_spec == "dmarc@catchall.test" and len(msg["To"].addresses) == 1
    assert re.fullmatch(r"Report Domain: dkim\.test Submitter: mx\.example\.test Report-ID: <\S+>", msg["Subject"])
    assert re.fullmatch(rf"mx\.example\.test!dkim\.test!{start - 3600}!{start - 1}!\w+\.xml\.gz", filename), filename
    meta = root.find("report_metadata")
    assert meta.findtext("org_name") == "Example & Co" and meta.findtext("email") == "postmaster@mx.example.test"
    assert (meta.findtext("date_range/begin"), meta.findtext("date_range/end")) == (str(start - 3600), str(start - 1))
    assert {e.tag: e.text for e in root.find("policy_published")} == {
        "domain": "dkim.test", "adkim": "r", "aspf": "r", "p": "reject", "sp": "quarantine", "pct": "100"}
    none_spf = ("elsewhere.example", "mfrom", "none")
    assert rows(root) == {
        ("127.0.0.1", 2, "none", "pass", "fail", None, "dkim.test", (("dkim.test", "rsa", "pass"),), none_spf),
        ("127.0.0.1", 1, "reject", "fail", "fail", None, "dkim.test", (), ("spf-pass.test", "mfrom", "pass")),
        ("127.0.0.1", 1, "quarantine", "fail", "fail", None, "news.dkim.test", (), none_spf)}

    reports = {r[1].findtext("policy_published/domain"): r for r in reports_for(srv, "dmarc@catchall.test", 2)}
    assert rows(reports["pct0.test"][1]) == {
        ("127.0.0.1", 1, "quarantine", "fail", "fail", "sampled_out", "pct0.test", (), none_spf)}
    (_, root, _), = reports_for(srv, "agg@catchall.test")  # inside its own domain: no agreement asked
    assert rows(root) == {("127.0.0.1", 1, "none", "fail", "fail", None, "catchall.test", (),
                           ("spf-pass.test", "mfrom", "pass"))}
    log = srv.log_text()
    assert "event=dmarc_report_skipped domain=dkim.test address=small@catchall.test reason=too_large" in log
    assert "event=dmarc_report_skipped domain=dkim.test address=r@other.test reason=not_authorized" in log
    assert "event=dmarc_report_skipped domain=spf-pass.test reason=no_rua" in log
    assert re.search(r"event=dmarc_report domain=dkim\.test qid=\w+ to=\"<dmarc@catchall\.test>\" messages=4", log)
    assert not state.exists()
    counts = values(mport)
    assert counts['postern_reports_total{kind="dmarc",result="sent"}'] == 3  # dkim.test, pct0.test, catchall.test
    assert counts['postern_reports_total{kind="dmarc",result="skipped"}'] == 1  # spf-pass.test: no rua=
    assert counts['postern_reports_total{kind="tls",result="sent"}'] == 0


def test_the_period_ends_on_its_own_and_header_mode_reports_local_policy(make_server):
    """dmarc_report_interval = 2s: the report comes without a restart. Under dmarc_policy = header
    nothing is refused or quarantined, so a fail where the domain asks p=reject is reported with
    disposition none and the reason local_policy."""
    srv = make_server(dkim_verify="yes", spf_policy="header", dmarc_policy="header", dmarc_reports="yes",
                      dmarc_report_interval="2s")
    assert send(srv, "carol@spf-pass.test", text("carol@dkim.test")) == 250
    (_, root, _), = reports_for(srv, "dmarc@catchall.test")
    assert rows(root) == {("127.0.0.1", 1, "none", "fail", "fail", "local_policy", "dkim.test", (),
                           ("spf-pass.test", "mfrom", "pass"))}
    assert re.search(r"event=dmarc_report domain=dkim\.test qid=\w+ .* messages=1", srv.log_text())


def test_dmarc_reports_without_dmarc_is_warned_about(tmp_path):
    conf = tmp_path / "p.conf"
    for text_, warned in (("dmarc_reports = yes\n", True),
                          ("dmarc_reports = yes\ndkim_verify = yes\nspf_policy = header\ndmarc_policy = header\n",
                           False)):
        conf.write_text("hostname = mx.example.test\n" + text_)
        out = check_config(conf)
        assert out.returncode == 0, out.stderr
        assert ("dmarc_reports detail=\"yes, but dmarc_policy = off" in out.stderr) == warned, out.stderr
