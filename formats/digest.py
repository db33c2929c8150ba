"""SHA-256 of a file through hashlib.file_digest, optionally reporting bytes as they are read."""

import hashlib
from collections.abc import Callable
from pathlib import Path


class _Counting:
    """A binary file whose readinto() tells `on_bytes` how much it read (for progress bars)."""

    def __init__(self, f, on_bytes: Callable[[int], None]):
        self.f, self.on_bytes = f, on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.f.readinto(buffer)
        if n:
            self.on_bytes(n)
        return n


def file_sha256(path: Path, on_bytes: Callable[[int], None] | None = None) -> str:
    with open(path, "rb") as f:
        source = f if on_bytes is None else _Counting(f, on_bytes)
        return hashlib.file_digest(source, "sha256").hexdigest()
