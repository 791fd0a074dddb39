"""The I/O seam: send one already-signed request over aiohttp and hand back what came back.

aiohttp's exceptions become this package's at exactly one boundary,
:func:`translate_errors`. Messages name the endpoint, never the URL or headers,
and the aiohttp exception left in ``__cause__``/``__context__`` is scrubbed of
the request it describes (its signed ``Authorization`` header) first.

Body caps count decoded bytes: ``Content-Length`` counts what came over the wire,
which for a gzip or deflate answer can be a thousandth of what it expands to.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from types import TracebackType
from typing import NoReturn, TypeVar

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from uitpas_async.engine.errors import (
    ConnectError,
    ConnectionLostError,
    MalformedResponseError,
    RequestTimeoutError,
    TransportError,
)

__all__ = [
    "AiohttpTransport",
    "HttpClientBase",
    "HttpSession",
    "RawResponse",
    "StreamingResponse",
    "read_body",
    "translate_errors",
]

#: Returns a fresh ``Authorization`` value; called at the moment each request is sent.
#: None sends the headers as given (no header to compute, or a bearer token among them).
Authorize = Callable[[], str]

#: Size of the chunks a download is streamed in.
DOWNLOAD_CHUNK_BYTES = 64 * 1024


@attrs.frozen
class RawResponse:
    """A whole answer: status, headers and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@attrs.frozen
class StreamingResponse:
    """An answer whose body is read in chunks."""

    status: int
    headers: Mapping[str, str]
    #: Declared body length, if any.
    content_length: int | None
    _response: aiohttp.ClientResponse = attrs.field(repr=False)
    _endpoint: str = attrs.field(repr=False)

    async def chunks(self) -> AsyncIterator[bytes]:
        """Yield the body in chunks; transport faults surface as TransportError."""
        with translate_errors(self._endpoint):
            async for chunk in self._response.content.iter_chunked(DOWNLOAD_CHUNK_BYTES):
                yield chunk

    async def read(self, limit: int) -> bytes:
        """Read the whole body, but no more than ``limit + 1`` decoded bytes."""
        with translate_errors(self._endpoint):
            return await _read_capped(self._response.content, limit)


def _identity_length(response: aiohttp.ClientResponse) -> int | None:
    """Return the declared length if it is the length of the body as read (no encoding)."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    return response.content_length if encoding in ("", "identity") else None


async def read_body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """Read a whole answer's body, but no more than ``limit + 1`` decoded bytes."""
    return await _read_capped(response.content, limit, _identity_length(response))


async def _read_capped(
    content: aiohttp.StreamReader, limit: int, declared_length: int | None = None
) -> bytes:
    """Read a body to its end, stopping once it is past ``limit`` decoded bytes.

    ``declared_length`` is only for unencoded bodies: aiohttp decodes gzip and
    deflate as it reads, in bounded steps, and this counts what it hands over.
    """
    if declared_length is not None and declared_length <= limit:
        # An unencoded body of declared length within the cap: one read, and
        # aiohttp stops at that length.
        return await content.read()
    buffer = bytearray()
    async for chunk in content.iter_chunked(DOWNLOAD_CHUNK_BYTES):
        buffer += chunk
        if len(buffer) > limit:
            break
    return bytes(buffer)


def _scrub(exc: BaseException) -> None:
    """Drop what an aiohttp exception holds of the request: headers, query, history.

    A ``ClientResponseError`` keeps the ``RequestInfo`` of its request, whose
    headers hold the signed ``Authorization``; it would reach any log that prints
    the exception chain.
    """
    if isinstance(exc, aiohttp.ClientResponseError):
        info = exc.request_info
        bare = aiohttp.RequestInfo(
            info.url.with_query(None).with_fragment(None),
            info.method,
            CIMultiDictProxy(CIMultiDict()),
            info.real_url.with_query(None).with_fragment(None),
        )
        exc.request_info = bare
        exc.history = ()
        exc.args = (bare, ())


@contextlib.contextmanager
def translate_errors(endpoint: str) -> Iterator[None]:
    """Map aiohttp and timeout exceptions to the package's TransportError branch."""
    try:
        yield
    except aiohttp.ClientError as exc:
        _raise_client_error(exc, endpoint)
    except asyncio.TimeoutError as exc:
        raise RequestTimeoutError(f"{endpoint}: timed out") from exc


def _raise_client_error(exc: aiohttp.ClientError, endpoint: str) -> NoReturn:
    """Scrub an aiohttp exception and its chain, then raise the package's error for it.

    Called from the ``except`` clause that caught ``exc``, so ``exc`` is the new
    error's context as well as its cause.
    """
    # Chained as cause and context alike, so scrub it before anything else.
    context: BaseException | None = exc
    while context is not None:
        _scrub(context)
        context = context.__context__
    _translate_client_error(exc, endpoint)


def _translate_client_error(exc: aiohttp.ClientError, endpoint: str) -> NoReturn:
    """Raise the package's error for an aiohttp one (already scrubbed)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        raise ConnectError(f"{endpoint}: cannot connect ({type(exc).__name__})") from exc
    if isinstance(exc, aiohttp.ServerTimeoutError):
        raise RequestTimeoutError(f"{endpoint}: timed out") from exc
    if isinstance(exc, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)):
        # After ClientConnectorError: every other connection fault may follow the send.
        raise ConnectionLostError(f"{endpoint}: connection lost ({type(exc).__name__})") from exc
    if isinstance(exc, aiohttp.ClientResponseError):
        raise MalformedResponseError(
            f"{endpoint}: unreadable HTTP answer ({type(exc).__name__})", status=exc.status or None
        ) from exc
    raise TransportError(f"{endpoint}: {type(exc).__name__}") from exc


class AiohttpTransport:
    """Sends signed requests on one shared aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, *, connect_timeout: float) -> None:
        # The session every request of this client goes through.
        self._session = session
        # Seconds to establish a connection, within each attempt's total timeout.
        self._connect_timeout = connect_timeout
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _timeout(self, total: float) -> aiohttp.ClientTimeout:
        # A client uses two or three totals; ClientTimeout is frozen, so build each once.
        timeout = self._timeouts.get(total)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=total, sock_connect=self._connect_timeout)
            self._timeouts[total] = timeout
        return timeout

    @staticmethod
    def _signing(authorize: Authorize | None) -> tuple[aiohttp.ClientMiddlewareType, ...]:
        """Sign in a middleware, so every physical send gets a fresh nonce and timestamp.

        aiohttp quietly sends an idempotent request again when a kept-alive
        connection turns out closed; a header set beforehand would then be a
        replayed nonce, which OAuth servers refuse.
        """
        if authorize is None:
            return ()

        async def sign(
            request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
        ) -> aiohttp.ClientResponse:
            request.headers["Authorization"] = authorize()
            return await handler(request)

        return (sign,)

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        authorize: Authorize | None,
        body: bytes | None,
        timeout: float,
        max_body: int,
        endpoint: str,
    ) -> RawResponse:
        """Send one request and read its whole body (at most ``max_body + 1`` bytes)."""
        # translate_errors, inlined: this runs on every call.
        try:
            async with self._session.request(
                method,
                url,
                headers=headers,
                data=body,
                timeout=self._timeout(timeout),
                allow_redirects=False,
                middlewares=self._signing(authorize),
            ) as response:
                payload = await read_body(response, max_body)
                return RawResponse(response.status, response.headers, payload)
        except aiohttp.ClientError as exc:
            _raise_client_error(exc, endpoint)
        except asyncio.TimeoutError as exc:
            raise RequestTimeoutError(f"{endpoint}: timed out") from exc

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        authorize: Authorize | None,
        timeout: float,
        endpoint: str,
    ) -> AsyncIterator[StreamingResponse]:
        """Send one request and yield its answer with the body unread."""
        with translate_errors(endpoint):
            response = await self._session.request(
                method,
                url,
                headers=headers,
                timeout=self._timeout(timeout),
                allow_redirects=False,
                middlewares=self._signing(authorize),
            )
        try:
            yield StreamingResponse(
                response.status, response.headers, response.content_length, response, endpoint
            )
        finally:
            response.release()


class HttpSession:
    """A client's one aiohttp session: the caller's, or created on first use and closed with it."""

    __slots__ = (
        "_connect_timeout",
        "_owned",
        "_pool_size",
        "_session",
        "_transport",
        "_user_agent",
    )

    def __init__(
        self,
        session: aiohttp.ClientSession | None,
        *,
        pool_size: int,
        connect_timeout: float,
        user_agent: str,
    ) -> None:
        # The caller's session (kept open at close), or None until we create ours.
        self._session = session
        self._owned = session is None
        # Connections in our own pool: at least the client's request bound, so no
        # request ever waits for a connection inside its timeout.
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._user_agent = user_agent
        self._transport: AiohttpTransport | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """Return the session, creating it on first use."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self._user_agent}
            )
        return self._session

    def transport(self) -> AiohttpTransport:
        """Return the transport over the session."""
        if self._transport is None:
            self._transport = AiohttpTransport(self.session, connect_timeout=self._connect_timeout)
        return self._transport

    async def close(self) -> None:
        """Close the session if it is ours."""
        if self._owned and self._session is not None:
            await self._session.close()
            self._session = None
        self._transport = None


_Client = TypeVar("_Client", bound="HttpClientBase")


class HttpClientBase:
    """The lifecycle of a client over one :class:`HttpSession`: ``async with`` and ``close``."""

    #: Set by the subclass's constructor.
    _http: HttpSession

    async def __aenter__(self: _Client) -> _Client:
        self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _open(self) -> AiohttpTransport:
        return self._http.transport()

    async def close(self) -> None:
        """Close the HTTP session if the client created it."""
        await self._http.close()
