"""Running a coroutine from a test."""

import asyncio
from concurrent.futures import ThreadPoolExecutor


def run_async(coroutine):
    """asyncio.run in a thread of its own: a session-scoped Playwright browser (its sync API) keeps
    an event loop running in the main thread, where asyncio.run refuses to start another."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
