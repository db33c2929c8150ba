"""File downloads with HTTP Range support (RFC 9110 §14), so large downloads can resume."""

import re
from pathlib import Path

from django.http import FileResponse, HttpRequest, HttpResponse

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
BLOCK = 1024**2


class _Slice:
    """A read-only window [start, start+length) of an open file."""

    def __init__(self, f, start: int, length: int):
        self.f, self.left = f, length
        f.seek(start)

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.f.close()


def parse_range(header: str, size: int) -> tuple[int, int] | None | str:
    """(first, last) byte positions, None to ignore the header (send everything), or
    "unsatisfiable". Only single ranges are honoured; a multi-range request gets the whole file,
    which RFC 9110 permits."""
    match = _RANGE.match(header.strip().replace(" ", ""))
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None  # invalid syntax: ignore
    if start >= size:
        return "unsatisfiable"
    return start, end


def ranged_file_response(request: HttpRequest, path: Path, *, filename: str,
                         etag: str = "") -> HttpResponse:
    size = path.stat().st_size
    wanted = None
    header = request.headers.get("Range", "")
    if_range = request.headers.get("If-Range", "")
    if header and (not if_range or (etag and if_range.strip('"') == etag)):
        wanted = parse_range(header, size)
    if wanted == "unsatisfiable":
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        return response
    f = open(path, "rb")
    if wanted is None:
        response = FileResponse(f, as_attachment=True, filename=filename)
    else:
        start, end = wanted
        response = FileResponse(_Slice(f, start, end - start + 1), as_attachment=True,
                                filename=filename, status=206)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    response.block_size = BLOCK
    response["Accept-Ranges"] = "bytes"
    if etag:
        response["ETag"] = f'"{etag}"'
    return response
