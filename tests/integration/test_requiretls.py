"""REQUIRETLS (RFC 8689 4) through the real binary: offered only in TLS sessions, taken as a MAIL
FROM parameter there; a message sent with it is relayed only to a next hop that is authenticated
(here sts.test, whose MTA-STS policy is in enforce mode - test_mta_sts.py's zone, policy server
and TLS peer) over verified TLS, and only when that host offers REQUIRETLS too (an aiosmtpd peer
taught to); else it bounces with 5.7.30 and a report that returns the header only."""
import re
import smtplib
import ssl

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from conftest import wait_for
from test_dane import dane  # noqa: F401 (a fixture)
from test_mta_sts import queue_listing, records, sts  # noqa: F401 (sts: a fixture)
from test_relay import Sink, dsn_for, relay, self_signed  # noqa: F401 (relay: a fixture)

BODY = b"Subject: secret plans\r\n\r\nThe body nobody may read in transit.\r\n"


def client_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return ctx


def send_requiretls(srv, rcpts, body=BODY, sender="alice@example.test"):
    """Sends over STARTTLS with MAIL FROM ... REQUIRETLS; the EHLO keywords seen after TLS."""
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as c:
        c.starttls(context=client_context())
        c.ehlo("client.example")
        offered = set(c.esmtp_features)
        c.sendmail(sender, rcpts, body, mail_options=["REQUIRETLS"])
    return offered


class RequireTlsSMTP(SMTP):
    """aiosmtpd taking REQUIRETLS on MAIL FROM (it would refuse the parameter as unknown)."""

    async def smtp_MAIL(self, arg):  # noqa: N802 (aiosmtpd's name)
        if arg and re.search(r"\sREQUIRETLS$", arg, re.I):
            arg = re.sub(r"\s+REQUIRETLS$", "", arg, flags=re.I)
            self.session.requiretls = True
        await super().smtp_MAIL(arg)


class RequireTlsSink(Sink):
    """Offers REQUIRETLS after STARTTLS; keeps, per message, whether MAIL FROM had it."""

    def __init__(self):
        super().__init__()
        self.requiretls = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        session.host_name = hostname
        return responses[:-1] + ["250-REQUIRETLS"] + responses[-1:] if server._tls_protocol else responses

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.requiretls.append(getattr(session, "requiretls", False))
        return await super().handle_DATA(server, session, envelope)


class RequireTlsController(Controller):
    def factory(self):
        return RequireTlsSMTP(self.handler, **self.SMTP_kwargs)


def requiretls_peer(relay, tmp_path):  # noqa: F811
    """Puts a peer that offers REQUIRETLS in place of the sts fixture's one on 127.0.0.2."""
    relay["peers"].controllers.pop("127.0.0.2").stop()
    cert, key = tmp_path / "mx.pem", tmp_path / "mx.key"
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    sink = RequireTlsSink()
    c = RequireTlsController(sink, hostname="127.0.0.2", port=relay["port"], tls_context=ctx, require_starttls=True)
    c.start()
    relay["peers"].controllers["127.0.0.2"] = c
    return sink


def tls_conf(tmp_path):
    cert, key = self_signed(tmp_path, "postern", "mx.example.test")
    return dict(tls_cert=cert, tls_key=key)


def test_requiretls_is_offered_and_taken_only_over_tls(make_server, tmp_path):
    """EHLO in cleartext does not offer it and MAIL FROM ... REQUIRETLS is then an unknown
    parameter; after STARTTLS it is offered, takes no value, and the local copy is delivered.
    requiretls = no offers it nowhere."""
    srv = make_server(**tls_conf(tmp_path))
    c = srv.connect()
    lines = c.expect("EHLO client.example", 250)
    assert not any("REQUIRETLS" in line for line in lines)
    c.expect("MAIL FROM:<a@example.test> REQUIRETLS", 555)
    c.expect("QUIT", 221)
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as s:
        s.starttls(context=client_context())
        s.ehlo("client.example")
        assert s.has_extn("requiretls")
        assert s.mail("a@example.test", ["REQUIRETLS=YES"])[0] == 501
        s.rset()
    assert "requiretls" in send_requiretls(srv, ["bob@example.test"])
    (copy,) = wait_for(lambda: srv.maildir_files("bob@example.test"))
    assert b"The body nobody" in copy.read_bytes()
    (tmp_path / "off").mkdir()
    off = make_server(requiretls="no", **tls_conf(tmp_path / "off"))
    with smtplib.SMTP("127.0.0.1", off.port, timeout=20) as s:
        s.starttls(context=client_context())
        s.ehlo("client.example")
        assert not s.has_extn("requiretls")
        assert s.mail("a@example.test", ["REQUIRETLS"])[0] == 555


def test_requiretls_mail_goes_only_to_a_host_that_offers_it(sts, relay, tmp_path):  # noqa: F811
    """sts.test (MTA-STS enforce: its MX authenticated) behind a verified TLS peer that offers no
    REQUIRETLS: the message bounces at once (5.7.30) - never sent there - and the report returns
    the header only, not the body. Then a peer that offers it: delivered, MAIL FROM with REQUIRETLS,
    and plain mail to the same domain is sent without it."""
    srv = sts["start"](**tls_conf(tmp_path))
    sts["zone"].start(records(sts["web"].ip))
    send_requiretls(srv, ["bob@sts.test"])
    dsn = dsn_for(srv)
    text = dsn.as_string()
    assert "5.7.30 mx.sts.test[127.0.0.2] does not offer REQUIRETLS, which the sender asked for (RFC 8689)" in \
        " ".join(text.split()), text
    assert "Subject: secret plans" in text and "The body nobody" not in text
    assert sts["peer"].messages == []
    peer = requiretls_peer(relay, tmp_path)
    send_requiretls(srv, ["carol@sts.test"])
    wait_for(lambda: peer.messages, what="delivery to the host that offers REQUIRETLS")
    assert peer.requiretls == [True] and b"The body nobody" in peer.messages[0][2]
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=20) as c:
        c.sendmail("alice@example.test", ["dave@sts.test"], b"Subject: plain\r\n\r\nplain\r\n")
    wait_for(lambda: len(peer.messages) == 2, what="the plain message")
    assert peer.requiretls == [True, False]


def test_requiretls_mail_to_a_domain_whose_mx_cannot_be_authenticated_bounces(sts, relay, tmp_path):  # noqa: F811
    """sts.test without its MTA-STS record (so no policy) and its zone unsigned: nothing
    authenticates its MX records, so a REQUIRETLS message is not sent there (5.7.30)."""
    srv = sts["start"](zone_records=records("127.0.0.9", txt=False), **tls_conf(tmp_path))
    send_requiretls(srv, ["bob@sts.test"])
    text = " ".join(dsn_for(srv).as_string().split())
    assert ("5.7.30 the sender asked for REQUIRETLS (RFC 8689), and the mail exchangers of sts.test cannot be "
            "authenticated") in text, text
    assert sts["peer"].messages == [] and "bob@sts.test" not in queue_listing(srv)


def test_requiretls_mail_goes_over_dane_to_a_dnssec_signed_domain(dane, tmp_path):  # noqa: F811
    """dane.test: its MX records DNSSEC-signed (so authenticated) with TLSA records; the peer's
    certificate names another host, which only DANE accepts. It offers REQUIRETLS once TLS is on:
    the message goes over DANE-verified TLS with MAIL FROM ... REQUIRETLS."""
    dane["peer"].ehlo_tls = b"250-mx.scripted.test\r\n250-PIPELINING\r\n250 REQUIRETLS\r\n"
    srv = dane["start"](dane["digest"], **tls_conf(tmp_path))
    send_requiretls(srv, ["bob@dane.test"])
    wait_for(lambda: dane["peer"].bodies, what="delivery over DANE")
    assert [line for line in dane["peer"].lines if line.startswith("MAIL")] == \
        ["MAIL FROM:<alice@example.test> REQUIRETLS"]
    assert dane["peer"].tls_used and "verified=dane" in srv.log_text()
