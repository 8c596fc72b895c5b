"""The SMTP peer of Nimbus' email tests: aiosmtpd on three ports, with the options a submission server has.

  2525  STARTTLS offered, AUTH (PLAIN, LOGIN, XOAUTH2) after TLS, AUTH required   (like port 587)
  2465  implicit TLS, AUTH required                                               (like port 465)
  2526  plain text, no TLS, no AUTH                                               (a relay on a trusted network)

Every port advertises PIPELINING, SIZE (1 MiB), 8BITMIME and SMTPUTF8. Recipients whose local part starts
with "reject" are refused (550 5.1.1), "busy" temporarily (451 4.2.1); a message to "tempfail-data" is
refused at the end of DATA (451 4.3.0); "drop-at-rcpt" and "drop-after-data" make the server hang up
there without a reply. Each accepted message is written to MAILDIR/<queue id>.eml with
MAILDIR/<queue id>.json (the envelope), and the 250 reply names the queue id.

usage: smtp_peer.py MAILDIR CERT KEY
"""
import asyncio
import base64
import itertools
import json
import os
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER, PASSWORD, TOKEN = b"nimbus", b"peer-password", "peer-oauth-token"
SIZE_LIMIT = 1024 * 1024
counter = itertools.count(1)


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER and auth_data.password == PASSWORD
    return AuthResult(success=ok, handled=False)


class Handler:
    def __init__(self, maildir, port):
        self.maildir, self.port = maildir, port

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return responses[:1] + ["250-PIPELINING"] + responses[1:]

    async def auth_XOAUTH2(self, server, args):
        # RFC 7628 / Google's XOAUTH2: base64("user=" U "\x01auth=Bearer " T "\x01\x01").
        blob = args[1] if len(args) > 1 else None
        if blob is None:
            response = await server.challenge_auth("", encode_to_b64=False)
            blob = response.decode() if isinstance(response, bytes) else None
        try:
            fields = dict(part.split("=", 1) for part in base64.b64decode(blob).decode().split("\x01") if part)
        except Exception:
            return AuthResult(success=False, handled=False, message="501 5.5.2 Can't decode XOAUTH2")
        if fields.get("user") == USER.decode() and fields.get("auth") == f"Bearer {TOKEN}":
            return AuthResult(success=True, auth_data=fields["user"])
        return AuthResult(success=False, handled=False, message="535 5.7.8 Username and Password not accepted")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if local.startswith("drop-at-rcpt"):
            server.transport.close()
            return "421 4.4.2 unused: the connection is already closed"
        if local.startswith("busy"):
            return "451 4.2.1 <%s>: Mailbox busy, try again later" % address
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(rcpt.lower().startswith("tempfail-data") for rcpt in envelope.rcpt_tos):
            return "451 4.3.0 Temporary failure, try again"
        if any(rcpt.lower().startswith("drop-after-data") for rcpt in envelope.rcpt_tos):
            server.transport.close()                         # the message was read, the reply never comes
            return "250 unused: the connection is already closed"
        queue_id = "Q%d%06d" % (self.port, next(counter))
        with open(os.path.join(self.maildir, queue_id + ".eml"), "wb") as f:
            f.write(envelope.original_content)
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos, "mail_options": envelope.mail_options,
                "rcpt_options": envelope.rcpt_options, "port": self.port, "ehlo": session.host_name,
                "authenticated": bool(session.authenticated), "peer": list(session.peer), "tls": server._tls_protocol is not None or self.port == 2465}
        with open(os.path.join(self.maildir, queue_id + ".json.tmp"), "w") as f:
            json.dump(meta, f)
        os.rename(os.path.join(self.maildir, queue_id + ".json.tmp"), os.path.join(self.maildir, queue_id + ".json"))
        return "250 2.0.0 OK queued as " + queue_id


def main():
    maildir, cert, key = sys.argv[1:4]
    os.makedirs(maildir, exist_ok=True)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    common = dict(hostname="127.0.0.1", data_size_limit=SIZE_LIMIT, enable_SMTPUTF8=True, decode_data=False,
                  server_hostname="nimbus-peer.localhost", ident="Nimbus aiosmtpd peer")
    controllers = [
        Controller(Handler(maildir, 2525), port=2525, tls_context=tls, authenticator=authenticator,
                   auth_required=True, auth_require_tls=True, **common),
        Controller(Handler(maildir, 2465), port=2465, ssl_context=tls, authenticator=authenticator,
                   auth_required=True, auth_require_tls=False, **common),
        Controller(Handler(maildir, 2526), port=2526, **common),
    ]
    for controller in controllers:
        controller.start()
    print("ready", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for controller in controllers:
            controller.stop()


if __name__ == "__main__":
    main()
