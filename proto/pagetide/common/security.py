"""Who may call a pagetide server and how a client proves who it is: bearer tokens with roles, mutual TLS, the
loopback-only default, and the one place client channels are built.

Servers (the agent, the controller) take a `ServerSecurity`:
- Tokens: a token file holds one token a line, `TOKEN` (role `write`) or `read TOKEN` / `write TOKEN`; `#`
  starts a comment. A call must carry `authorization: Bearer TOKEN` metadata matching one of them
  (hmac.compare_digest); none or another gets UNAUTHENTICATED. A `read` token may call only the methods that
  change nothing -- those named Get*, List* or Watch* -- and gets PERMISSION_DENIED for any other (MovePages,
  AdvanceClock, SetVmPolicy, ...: new methods are mutating unless their name says otherwise).
- Mutual TLS: a server certificate and key, and the CA client certificates must chain to
  (require_client_auth). A client without a certificate, or with one from another CA, is refused in the TLS
  handshake: it sees UNAVAILABLE, never a status from pagetide. With `client_names`, a client whose
  certificate is from the right CA but names none of them (common name or DNS subject alternative name) gets
  PERMISSION_DENIED. With mTLS and no tokens, an accepted certificate has role `write`; with both, the token
  decides the role.
- Open to anyone who can connect: gRPC health checking and server reflection (they reveal service names and
  schemas, never hosts' state).
- A server listens on loopback unless told otherwise; a non-loopback address needs tokens or mTLS, or
  `--insecure` to say that the network itself is trusted (`listen_error`). Tokens over plain TCP can be read
  by anyone on the path: off loopback use them with TLS.

File permissions: a token file, or a TLS private key, readable by group or others is refused (chmod 600),
as ssh refuses such a private key.

Clients take a `ClientSecurity` (plain data: it travels to Ray actors) and build channels with
`client_channel`; `add_client_security_arguments` gives every client CLI the same flags.
"""

from __future__ import annotations

import argparse
import collections
import hmac
import ipaddress
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

ROLES = ("read", "write")
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
READ_ONLY_VERBS = ("Get", "List", "Watch")
MIN_TOKEN_CHARS = 16


class SecurityError(ValueError):
    """A security setting that cannot be used (a missing or too widely readable file, a bad token line)."""


def read_private(path: str) -> bytes:
    """A secret file's bytes; SecurityError if it is missing or readable by group or others."""
    try:
        mode = os.stat(path).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecurityError(f"{path}: readable by group or others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise SecurityError(f"{path}: {e.strerror}") from None


def read_public(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise SecurityError(f"{path}: {e.strerror}") from None


def parse_tokens(text: str, source: str = "token file") -> tuple[tuple[str, str], ...]:
    """(token, role) pairs of a token file's text; SecurityError naming the line of a bad one."""
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) == 1:
            role, token = "write", words[0]
        elif len(words) == 2 and words[0] in ROLES:
            role, token = words
        else:
            raise SecurityError(f"{source}:{i}: expected TOKEN or ROLE TOKEN (roles: {', '.join(ROLES)})")
        if len(token) < MIN_TOKEN_CHARS:
            raise SecurityError(f"{source}:{i}: a token needs at least {MIN_TOKEN_CHARS} characters")
        out.append((token, role))
    if not out:
        raise SecurityError(f"{source}: no token in it")
    return tuple(out)


def load_tokens(path: str) -> tuple[tuple[str, str], ...]:
    return parse_tokens(read_private(path).decode(), path)


def write_token_file(path: str, token: str, role: str = "write") -> None:
    """A token file only its owner can read (what `pagetide sim` makes for the agents it starts)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{role} {token}\n")


def read_only(method: str) -> bool:
    """Whether a full method name ("/pkg.Service/Method") changes nothing, by its verb."""
    return method.rsplit("/", 1)[-1].startswith(READ_ONLY_VERBS)


# ---- servers -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ServerSecurity:
    tokens: tuple[tuple[str, str], ...] = ()     # (token, role)
    cert: bytes | None = None                    # PEM: the server's certificate chain and key
    key: bytes | None = None
    client_ca: bytes | None = None               # PEM: the CA client certificates must chain to (mTLS)
    client_names: tuple[str, ...] = ()           # mTLS: accepted client identities (CN or DNS SAN); () any
    insecure: bool = False                       # explicitly allowed to listen off loopback without either

    @property
    def authenticates(self) -> bool:
        return bool(self.tokens) or self.client_ca is not None

    @property
    def guarded(self) -> bool:
        """Whether calls are checked at all (an interceptor is needed)."""
        return self.authenticates

    def credentials(self) -> grpc.ServerCredentials | None:
        if self.cert is None:
            return None
        return grpc.ssl_server_credentials([(self.key, self.cert)], root_certificates=self.client_ca,
                                           require_client_auth=self.client_ca is not None)

    def describe(self) -> str:
        parts = []
        if self.cert is not None:
            parts.append("mTLS" if self.client_ca is not None else "TLS")
        if self.tokens:
            parts.append("tokens")
        return " + ".join(parts) or "no authentication"

    def check(self, method: str, metadata: Sequence[tuple[str, object]], auth: dict) -> tuple[grpc.StatusCode, str] | None:
        """Whether a call of `method` with this metadata and TLS peer (the context's auth_context()) may run:
        None, or the (code, message) to refuse it with."""
        if not self.authenticates or method.startswith(OPEN_PREFIXES):
            return None
        role = "write"
        if self.client_ca is not None and self.client_names:
            names = {v.decode() for k in ("x509_common_name", "x509_subject_alternative_name")
                     for v in auth.get(k, ())}
            if not names & set(self.client_names):
                return (grpc.StatusCode.PERMISSION_DENIED,
                        f"client certificate {sorted(names)} is not one of the allowed clients")
        if self.tokens:
            given = [v for k, v in metadata if k == "authorization"]
            if not given:
                return grpc.StatusCode.UNAUTHENTICATED, "no bearer token (authorization: Bearer TOKEN)"
            value = given[0] if isinstance(given[0], str) else given[0].decode("latin-1")
            scheme, _, token = value.partition(" ")
            match = None
            for known, known_role in self.tokens:
                # compare every token, so the time taken says nothing about which one nearly matched
                if hmac.compare_digest(token.strip().encode(), known.encode()) and scheme.lower() == "bearer":
                    match = known_role
            if match is None:
                return grpc.StatusCode.UNAUTHENTICATED, "invalid bearer token"
            role = match
        if role == "read" and not read_only(method):
            return grpc.StatusCode.PERMISSION_DENIED, f"a read-only token may not call {method}"
        return None


def host_of(listen: str) -> str:
    """The host part of "host:port", "[v6]:port" or ":port" (empty: every interface)."""
    if listen.startswith(("unix:", "unix-abstract:")):
        return "localhost"
    host = listen.rsplit(":", 1)[0] if ":" in listen else listen
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def is_loopback(listen: str) -> bool:
    host = host_of(listen)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False        # a name, or every interface: not loopback as far as we can tell


def listen_error(listen: str, security: ServerSecurity, flag: str = "--listen", prefix: str = "") -> str | None:
    """Why a server may not listen on `listen` with these settings, or None; names the flags of
    add_server_security_arguments(prefix=...)."""
    if is_loopback(listen) or security.authenticates or security.insecure:
        return None
    f = f"--{prefix}"
    return (f"{flag} {listen} is not a loopback address: calls from the network need authentication "
            f"({f}token-file, or {f}tls-cert/{f}tls-key with {f}tls-client-ca), or {f}insecure to accept "
            f"unauthenticated calls from anyone who can reach it")


def bound_address(listen: str, port: int) -> str:
    """The address actually bound: `listen`'s host (every interface stays 0.0.0.0 / [::]) and the port."""
    host = listen.rsplit(":", 1)[0] if ":" in listen else listen
    return f"{host or '0.0.0.0'}:{port}"


def add_server_security_arguments(p: argparse.ArgumentParser, prefix: str = "", what: str = "this server") -> None:
    """--[prefix]token-file, --[prefix]tls-cert/-key/-client-ca, --[prefix]tls-client-name, --[prefix]insecure."""
    f = f"--{prefix}"
    p.add_argument(f"{f}token-file", metavar="FILE",
                   help=f"tokens callers of {what} must present (one a line: TOKEN, or read|write TOKEN; mode 600)")
    p.add_argument(f"{f}tls-cert", metavar="PEM", help=f"{what}'s TLS certificate (with --{prefix}tls-key)")
    p.add_argument(f"{f}tls-key", metavar="PEM", help=f"{what}'s TLS private key (mode 600)")
    p.add_argument(f"{f}tls-client-ca", metavar="PEM",
                   help="require client certificates signed by this CA (mutual TLS)")
    p.add_argument(f"{f}tls-client-name", action="append", default=[], metavar="NAME",
                   help="with mutual TLS: accept only client certificates naming this CN or DNS name (repeatable)")
    p.add_argument(f"{f}insecure", action="store_true",
                   help="allow a non-loopback listen address without authentication")


def server_security(args: argparse.Namespace, prefix: str = "") -> ServerSecurity:
    """ServerSecurity from the flags add_server_security_arguments declared; SecurityError for bad files."""
    d = prefix.replace("-", "_")
    get = lambda name: getattr(args, f"{d}{name}")     # noqa: E731
    cert, key, ca = get("tls_cert"), get("tls_key"), get("tls_client_ca")
    if (cert is None) != (key is None):
        raise SecurityError(f"--{prefix}tls-cert and --{prefix}tls-key go together")
    if ca is not None and cert is None:
        raise SecurityError(f"--{prefix}tls-client-ca needs --{prefix}tls-cert and --{prefix}tls-key")
    if get("tls_client_name") and ca is None:
        raise SecurityError(f"--{prefix}tls-client-name needs --{prefix}tls-client-ca")
    return ServerSecurity(
        tokens=load_tokens(get("token_file")) if get("token_file") else (),
        cert=read_public(cert) if cert else None, key=read_private(key) if key else None,
        client_ca=read_public(ca) if ca else None, client_names=tuple(get("tls_client_name")),
        insecure=get("insecure"))


# ---- clients -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClientSecurity:
    """How a client calls a server: a bearer token, and TLS (the CA the server's certificate must chain to,
    and for mutual TLS the client's own certificate and key). Plain bytes, so it pickles to Ray actors."""
    token: str | None = None
    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None
    server_name: str | None = None       # the name to expect in the server's certificate, if not the address's

    @property
    def tls(self) -> bool:
        return self.ca is not None or self.cert is not None


class _BearerToken(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor,
                   grpc.aio.StreamUnaryClientInterceptor, grpc.aio.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer TOKEN` to every call's metadata."""

    def __init__(self, token: str):
        self.header = ("authorization", f"Bearer {token}")

    def _details(self, d: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        md = grpc.aio.Metadata(*(tuple(d.metadata) if d.metadata else ()), self.header)
        return grpc.aio.ClientCallDetails(d.method, d.timeout, md, d.credentials, d.wait_for_ready)

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        return await continuation(self._details(client_call_details), request)

    async def intercept_unary_stream(self, continuation, client_call_details, request):
        return await continuation(self._details(client_call_details), request)

    async def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return await continuation(self._details(client_call_details), request_iterator)

    async def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return await continuation(self._details(client_call_details), request_iterator)


def client_channel(address: str, security: ClientSecurity | None = None,
                   options: Sequence[tuple[str, object]] = ()) -> grpc.aio.Channel:
    """A grpc.aio channel to `address` with `security`'s TLS and token (plain TCP without either)."""
    security = security or ClientSecurity()
    interceptors = [_BearerToken(security.token)] if security.token else None
    opts = list(options)
    if security.server_name:
        opts.append(("grpc.ssl_target_name_override", security.server_name))
    if security.tls:
        creds = grpc.ssl_channel_credentials(root_certificates=security.ca, private_key=security.key,
                                             certificate_chain=security.cert)
        return grpc.aio.secure_channel(address, creds, options=opts, interceptors=interceptors)
    return grpc.aio.insecure_channel(address, options=opts, interceptors=interceptors)


class _CallDetails(collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials",
                                                            "wait_for_ready", "compression")),
                   grpc.ClientCallDetails):
    pass


class _BlockingBearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                           grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """_BearerToken for blocking (non-aio) channels."""

    def __init__(self, token: str):
        self.header = ("authorization", f"Bearer {token}")

    def _details(self, d):
        return _CallDetails(d.method, d.timeout, [*(d.metadata or ()), self.header], d.credentials,
                            getattr(d, "wait_for_ready", None), getattr(d, "compression", None))

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)


def blocking_channel(address: str, security: ClientSecurity | None = None,
                     options: Sequence[tuple[str, object]] = ()) -> grpc.Channel:
    """client_channel for blocking code (a command-line client): a grpc.Channel, same TLS and token."""
    security = security or ClientSecurity()
    opts = list(options)
    if security.server_name:
        opts.append(("grpc.ssl_target_name_override", security.server_name))
    if security.tls:
        ch = grpc.secure_channel(address, grpc.ssl_channel_credentials(
            root_certificates=security.ca, private_key=security.key, certificate_chain=security.cert), options=opts)
    else:
        ch = grpc.insecure_channel(address, options=opts)
    return grpc.intercept_channel(ch, _BlockingBearerToken(security.token)) if security.token else ch


def add_client_security_arguments(p: argparse.ArgumentParser, prefix: str = "", what: str = "the server") -> None:
    """--[prefix]token-file, --[prefix]tls-ca, --[prefix]tls-cert/-key, --[prefix]tls-server-name."""
    f = f"--{prefix}"
    p.add_argument(f"{f}token-file", metavar="FILE",
                   help=f"bearer token to present to {what} (the file's first token; mode 600)")
    p.add_argument(f"{f}tls-ca", metavar="PEM", help=f"call {what} over TLS, its certificate signed by this CA")
    p.add_argument(f"{f}tls-cert", metavar="PEM", help=f"client certificate for mutual TLS with {what}")
    p.add_argument(f"{f}tls-key", metavar="PEM", help="the client certificate's private key (mode 600)")
    p.add_argument(f"{f}tls-server-name", metavar="NAME",
                   help=f"the name {what}'s certificate must carry, if not the address's host")


def client_security(args: argparse.Namespace, prefix: str = "") -> ClientSecurity:
    """ClientSecurity from the flags add_client_security_arguments declared; SecurityError for bad files."""
    d = prefix.replace("-", "_")
    get = lambda name: getattr(args, f"{d}{name}")     # noqa: E731
    cert, key, ca = get("tls_cert"), get("tls_key"), get("tls_ca")
    if (cert is None) != (key is None):
        raise SecurityError(f"--{prefix}tls-cert and --{prefix}tls-key go together")
    if cert is not None and ca is None:
        raise SecurityError(f"--{prefix}tls-cert needs --{prefix}tls-ca (the CA of the server's certificate)")
    token = load_tokens(get("token_file"))[0][0] if get("token_file") else None
    return ClientSecurity(token=token, ca=read_public(ca) if ca else None, cert=read_public(cert) if cert else None,
                          key=read_private(key) if key else None, server_name=get("tls_server_name"))
