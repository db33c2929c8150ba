"""The server-sent event frames /v1 streaming and the playground write."""

import asyncio
import json

from runtime import sse

from tests.support.aio import run_async


def test_a_frame_is_one_data_line_of_json_and_a_blank_line():
    event = {"type": "token", "text": "two\nlines", "quote": '"'}
    raw = sse.frame(event)
    assert raw.endswith(b"\n\n") and raw.count(b"\n") == 2   # the text's newline stays escaped
    assert raw.startswith(b"data: ") and json.loads(raw[len(b"data: "):]) == event


def test_done_is_openais_literal():
    assert sse.done() == b"data: [DONE]\n\n"


def test_the_response_streams_the_frames_unbuffered():
    async def frames():
        yield sse.frame({"n": 1})
        yield sse.done()

    response = sse.response(frames())
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache" and response["X-Accel-Buffering"] == "no"

    async def body():
        return b"".join([chunk async for chunk in response])

    assert run_async(body()) == b'data: {"n": 1}\n\ndata: [DONE]\n\n'
