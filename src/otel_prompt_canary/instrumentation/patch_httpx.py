"""OpenAI-compatible HTTP calls an application makes itself with ``httpx`` or ``httpx2``.

``Client.send`` and ``AsyncClient.send`` are wrapped (for both libraries). A ``POST`` whose path ends
in ``/chat/completions``, ``/responses`` or ``/completions`` is recorded like an SDK call: the JSON
request body is read for the model, parameters and system prompt, the JSON response (or the
server-sent events of a stream, as the application reads them, up to ``data: [DONE]``) for the
response. The ``openai`` and ``anthropic`` SDKs run on ``httpx2``: their requests are sent while a
client patch records the call, which the context says, so they pass through untouched and every call
counts once; a request an SDK sends by another way (LiteLLM posts through the client's ``post()``)
is recorded here.

Only the request body is ever changed (rewrite mode); the response bytes reach the application as
the server sent them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import context as otel_context

from otel_prompt_canary.instrumentation._bodies import BodyReader, json_view, watch_body
from otel_prompt_canary.instrumentation._call import UNREADABLE, Api, CallState
from otel_prompt_canary.instrumentation._openai import ChatCompletionsApi, CompletionsApi, ResponsesApi
from otel_prompt_canary.instrumentation._wrappers import Patcher, Wrapper, skip
from otel_prompt_canary.instrumentation.utils import server_of

# The runtime is injected into the wrappers, never looked up: it is needed here as a type only.
if TYPE_CHECKING:
    from otel_prompt_canary.instrumentation._runtime import Runtime

__all__ = ["LLM_PATHS", "api_of_path", "llm_apis", "patch"]

logger = logging.getLogger("otel_prompt_canary.instrumentation")

#: URL path endings of the OpenAI-compatible generation endpoints recorded on the HTTP path (the
#: first that matches wins: ``/chat/completions`` before ``/completions``).
LLM_PATHS: Final = ("/chat/completions", "/responses", "/completions")


def llm_apis() -> dict[str, Api]:
    """The API of each path of :data:`LLM_PATHS` (read from JSON: no SDK class to recognise)."""
    return {
        "/chat/completions": ChatCompletionsApi(),
        "/responses": ResponsesApi(),
        "/completions": CompletionsApi(),
    }


def api_of_path(method: str, path: str, apis: Mapping[str, Api]) -> Api | None:
    """The API a request is a call of, or None (not a ``POST`` to one of :data:`LLM_PATHS`)."""
    if method != "POST":
        return None
    for ending in LLM_PATHS:
        if path.endswith(ending):
            return apis[ending]
    return None


def patch(runtime: Runtime, patcher: Patcher, modules: list[str]) -> None:
    """Wrap ``Client.send``/``AsyncClient.send`` of each of ``modules`` (``httpx``, ``httpx2``)."""
    apis = llm_apis()
    for name in modules:
        module = __import__(name)
        patcher.patch(name, "Client.send", _sync_send(runtime, apis, module))
        patcher.patch(name, "AsyncClient.send", _async_send(runtime, apis, module))


def _api_of(request: Any, apis: Mapping[str, Api]) -> Api | None:
    try:
        method: str = request.method
        path: str = request.url.path
    except Exception:
        return None
    return api_of_path(method, path, apis)


def _body(request: Any) -> dict[str, Any] | None:
    try:
        body = json.loads(request.content)
    except Exception:  # a streaming body, not JSON, not read
        return None
    return body if isinstance(body, dict) else None


def _rebuild(module: Any, request: Any, body: dict[str, Any]) -> Any:
    headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "content-length"]
    return module.Request(
        request.method,
        request.url,
        headers=headers,
        content=json.dumps(body).encode(),
        extensions=request.extensions,
    )


def _start(
    runtime: Runtime, module: Any, api: Api, request: Any
) -> tuple[CallState, otel_context.Context, Any] | None:
    body = _body(request)
    if body is None:
        return None
    started = runtime.begin(api, None, body)
    if started is None:
        return None
    call, ctx, call_body = started
    call.request.attributes.update(server_of(request.url))
    if call.span is not None:
        call.span.set_attributes(server_of(request.url))
    if call_body is not body:
        try:
            request = _rebuild(module, request, call_body)
        except Exception:
            logger.warning("could not rewrite an HTTP request body; sending it unchanged", exc_info=True)
    return call, ctx, request


def _replace_request(args: tuple[Any, ...], kwargs: dict[str, Any], request: Any) -> tuple[Any, ...]:
    if args:
        return (request, *args[1:])
    kwargs["request"] = request
    return args


def _sync_send(runtime: Runtime, apis: Mapping[str, Api], module: Any) -> Wrapper:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if skip(runtime):  # first: an SDK call in flight is the common case, and the cheapest test
            return wrapped(*args, **kwargs)
        request = args[0] if args else kwargs.get("request")
        api = _api_of(request, apis)
        if api is None:
            return wrapped(*args, **kwargs)
        started = _start(runtime, module, api, request)
        if started is None:
            return wrapped(*args, **kwargs)
        call, ctx, request = started
        args = _replace_request(args, kwargs, request)
        token = otel_context.attach(ctx)
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as error:
            otel_context.detach(token)
            runtime.fail(call, error)
            raise
        otel_context.detach(token)
        _observe(runtime, call, response)
        return response

    return wrapper


def _async_send(runtime: Runtime, apis: Mapping[str, Api], module: Any) -> Wrapper:
    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if skip(runtime):  # first: an SDK call in flight is the common case, and the cheapest test
            return await wrapped(*args, **kwargs)
        request = args[0] if args else kwargs.get("request")
        api = _api_of(request, apis)
        if api is None:
            return await wrapped(*args, **kwargs)
        started = _start(runtime, module, api, request)
        if started is None:
            return await wrapped(*args, **kwargs)
        call, ctx, request = started
        args = _replace_request(args, kwargs, request)
        token = otel_context.attach(ctx)
        try:
            response = await wrapped(*args, **kwargs)
        except BaseException as error:
            otel_context.detach(token)
            runtime.fail(call, error)
            raise
        otel_context.detach(token)
        _observe(runtime, call, response)
        return response

    return wrapper


def _observe(runtime: Runtime, call: CallState, response: Any) -> None:
    """Record a response now (read) or as its body is read (streamed); never raises."""
    try:
        status = response.status_code
        if status >= 400:
            runtime.finish(call, None, error_type=str(status))
            return
        headers = response.headers
        sse = "text/event-stream" in headers.get("content-type", "")
        if not sse and response.is_stream_consumed:
            view = json_view(call, response.content)
            runtime.finish(call, view, error_type=None if view is not None else UNREADABLE)
            return
        encoding = headers.get("content-encoding", "").lower().strip()
        call.deferred = True
        if not watch_body(response, BodyReader(runtime, call, sse, encoding)):
            runtime.finish(call, None, error_type=UNREADABLE)
    except Exception:
        logger.warning("could not record an HTTP LLM response", exc_info=True)
        runtime.end_quietly(call)
