"""A tiny OpenID Connect provider for tests: discovery, an /authorize that signs in whoever the test
says at once, /token handing out an RS256 id_token (key made with `cryptography`, signed with
joserfc) that carries the authorize request's nonce, and /jwks. Real HTTP on a free loopback port,
so Streamlit's Authlib client does the whole round trip for real."""

from __future__ import annotations

import json
import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "plinth-test"
CLIENT_SECRET = "test-client-secret"


@dataclass
class Provider:
    issuer: str
    key: RSAKey
    #: The claims of the next person to "sign in" (the test sets them).
    person: dict = field(default_factory=lambda: {"email": "owner@plinth.test", "email_verified": True})
    codes: dict = field(default_factory=dict)  # code -> (nonce, client_id)
    tokens_issued: int = 0


def _handler(provider: Provider):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args):
            pass

        def _json(self, body: dict, status: int = 200):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._json({"issuer": provider.issuer, "authorization_endpoint": provider.issuer + "/authorize",
                            "token_endpoint": provider.issuer + "/token", "jwks_uri": provider.issuer + "/jwks",
                            "response_types_supported": ["code"], "subject_types_supported": ["public"],
                            "id_token_signing_alg_values_supported": ["RS256"],
                            "code_challenge_methods_supported": ["S256"]})
            elif url.path == "/jwks":
                self._json({"keys": [provider.key.as_dict(private=False, kid="k1", use="sig", alg="RS256")]})
            elif url.path == "/authorize":
                code = secrets.token_urlsafe(16)
                provider.codes[code] = (query.get("nonce"), query.get("client_id"))
                back = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
                self.send_response(302)
                self.send_header("Location", back)
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._json({"error": "not_found"}, 404)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if urlsplit(self.path).path != "/token" or form.get("code") not in provider.codes:
                self._json({"error": "invalid_grant"}, 400)
                return
            nonce, client_id = provider.codes.pop(form["code"])
            now = int(time.time())
            claims = {"iss": provider.issuer, "sub": provider.person["email"], "aud": client_id, "iat": now,
                      "exp": now + 300, "nonce": nonce, "name": "Test Person", **provider.person}
            id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, provider.key)
            provider.tokens_issued += 1
            self._json({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                        "id_token": id_token})

    return Handler


@contextmanager
def running_provider():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)
    provider = Provider(f"http://127.0.0.1:{server.server_address[1]}", RSAKey.import_key(pem))
    server.RequestHandlerClass = _handler(provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
