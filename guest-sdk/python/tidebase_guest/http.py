"""HTTP requests from a workflow, through the host's egress broker.

A workflow has no sockets: requests go out through the standard
``wasi:http/outgoing-handler`` import, and the host's broker allows them only
inside a step and only under a resource the deployment was granted
(``deploy --allow NAME``), adds the resource's credential (the workflow never
sees it) and records every call. A completed step's requests are never made
again: a resumed run replays the checkpoint.

A refused request raises :class:`tidebase_guest.HostError` named after the
reason, as the Rust guest SDK names it: ``EgressDenied``, ``EgressTimeout``,
``EgressTooLarge``, ``EgressUnreachable``; anything else is ``HttpError``.
A malformed URL is ``InvalidUrl``::

    from tidebase_guest import http

    status = run.step("fetch", lambda: http.get(url).status)
"""

from __future__ import annotations

import json
from typing import Any, Optional

from . import HostError

try:
    # Imported with the module, at build time: a component cannot import later.
    from componentize_py_types import Err, Ok
    from wit_world.imports import outgoing_handler, streams
    from wit_world.imports import wasi_http_types as t
except ImportError:  # plain CPython (e.g. the same workflow under the SDK)
    outgoing_handler = None

_WRITE_CHUNK = 4096
_READ_CHUNK = 64 << 10


class Response:
    """A response as the broker delivered it (the whole body is read)."""

    def __init__(self, status: int, headers: list, body: bytes):
        self.status = status
        #: (lower-case name, bytes value) pairs, in the order received.
        self.headers = headers
        self.body = body

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self) -> str:
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise HostError("HttpError", f"response body is not UTF-8: {e}") from None

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise HostError("HttpError", f"response body is not JSON: {e}") from None

    def header(self, name: str) -> Optional[str]:
        """The first value of header ``name`` (any case), if present and UTF-8."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                try:
                    return value.decode("utf-8")
                except UnicodeDecodeError:
                    return None
        return None


def get(url: str, headers: Optional[dict] = None) -> Response:
    return request("GET", url, headers=headers)


def post(url: str, body: Any = b"", headers: Optional[dict] = None) -> Response:
    """POST ``body``: bytes, text, or any other value sent as JSON (with a
    ``content-type: application/json`` header unless one is given)."""
    headers = dict(headers or {})
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        if not any(k.lower() == "content-type" for k in headers):
            headers["content-type"] = "application/json"
    return request("POST", url, headers=headers, body=body)


def request(method: str, url: str, *, headers: Optional[dict] = None, body: Any = b"") -> Response:
    """A request with any method, headers and body (bytes or text). Any
    status is a response, not an error: check ``status`` or ``ok``."""
    if outgoing_handler is None:
        raise HostError("HttpError", "tidebase_guest.http works inside a component only")
    scheme, authority, path = _split(url)
    data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    entries = [(str(k), str(v).encode("utf-8")) for k, v in (headers or {}).items()]
    try:
        fields = t.Fields.from_list(entries)
    except Err as e:
        raise HostError("HttpError", f"{method} {url}: header refused: {e.value}") from None
    req = t.OutgoingRequest(fields)
    try:
        req.set_method(_method(method))
        req.set_scheme(t.Scheme_Https() if scheme == "https" else t.Scheme_Http())
        req.set_authority(authority)
        req.set_path_with_query(path)
    except Err:
        raise HostError("InvalidUrl", f"{method} {url}: not a valid request") from None
    outgoing = req.body()
    try:
        pending = outgoing_handler.handle(req, None)
    except Err as e:
        raise _refusal(method, url, e.value) from None
    # Written after sending: the host reads the body as it comes. A refused
    # request drops the body unread; the refusal arrives as the response.
    write_error = _write(outgoing, data)
    with pending:
        while True:
            answer = pending.get()
            if answer is not None:
                break
            with pending.subscribe() as ready:
                ready.block()
    if isinstance(answer, Err) or isinstance(answer.value, Err):
        code = answer.value.value if isinstance(answer, Ok) else None
        raise _refusal(method, url, code)
    if write_error:
        raise HostError("HttpError", f"{method} {url}: sending the body: {write_error}")
    with answer.value.value as response:
        return _read(response, method, url)


def _write(outgoing, data: bytes) -> Optional[str]:
    try:
        with outgoing.write() as stream:
            for i in range(0, len(data), _WRITE_CHUNK):
                stream.blocking_write_and_flush(data[i : i + _WRITE_CHUNK])
        t.OutgoingBody.finish(outgoing, None)
    except Err as e:
        return "the host closed the stream" if isinstance(e.value, streams.StreamError_Closed) else repr(e.value)
    return None


def _read(response, method: str, url: str) -> Response:
    status = response.status()
    with response.headers() as fields:
        headers = fields.entries()
    incoming = response.consume()
    chunks = []
    with incoming.stream() as stream:
        while True:
            try:
                chunks.append(stream.blocking_read(_READ_CHUNK))
            except Err as e:
                if isinstance(e.value, streams.StreamError_Closed):
                    break
                code = t.http_error_code(e.value.value)
                if code is None:
                    raise HostError("HttpError", f"{method} {url}: {e.value.value.to_debug_string()}") from None
                raise _refusal(method, url, code) from None
    t.IncomingBody.finish(incoming)
    return Response(status, headers, b"".join(chunks))


def _refusal(method: str, url: str, code) -> HostError:
    """The error for a request the host did not answer, named by its reason."""
    reasons = [
        ((t.ErrorCode_HttpRequestDenied,), "EgressDenied",
         "the host refused the request (only inside a step, under a granted resource)"),
        ((t.ErrorCode_ConnectionTimeout, t.ErrorCode_ConnectionReadTimeout,
          t.ErrorCode_ConnectionWriteTimeout, t.ErrorCode_HttpResponseTimeout),
         "EgressTimeout", "the upstream did not answer in time"),
        ((t.ErrorCode_HttpResponseBodySize,), "EgressTooLarge", "the response exceeds the size cap"),
        ((t.ErrorCode_HttpRequestBodySize,), "EgressTooLarge", "the request body exceeds the size cap"),
        ((t.ErrorCode_ConnectionRefused,), "EgressUnreachable",
         "the upstream refused or dropped the connection"),
    ]
    for kinds, name, why in reasons:
        if isinstance(code, kinds):
            return HostError(name, f"{method} {url}: {why}")
    return HostError("HttpError", f"{method} {url}: {code!r}")


def _method(method: str):
    known = {
        "GET": t.Method_Get, "HEAD": t.Method_Head, "POST": t.Method_Post, "PUT": t.Method_Put,
        "DELETE": t.Method_Delete, "CONNECT": t.Method_Connect, "OPTIONS": t.Method_Options,
        "TRACE": t.Method_Trace, "PATCH": t.Method_Patch,
    }
    kind = known.get(method.upper())
    return kind() if kind else t.Method_Other(method)


def _split(url: str) -> tuple:
    """(scheme, authority, path with query) of an absolute http(s) URL."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise HostError("InvalidUrl", f"{url}: not an absolute URL")
    scheme = scheme.lower()
    if scheme not in ("http", "https"):
        raise HostError("InvalidUrl", f"{url}: only http and https are supported")
    rest = rest.split("#", 1)[0]
    cut = min([i for i in (rest.find("/"), rest.find("?")) if i >= 0], default=len(rest))
    authority, path = rest[:cut], rest[cut:]
    if not authority:
        raise HostError("InvalidUrl", f"{url}: no host")
    if not path:
        path = "/"
    elif path.startswith("?"):
        path = "/" + path
    return scheme, authority, path
