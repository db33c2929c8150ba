"""Upload size limits: refuse by Content-Length before the body is read, and count the bytes
while they stream to disk (a client may lie or send chunked bodies)."""

import shutil
from functools import wraps
from pathlib import Path

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt, csrf_protect


def uploads_root() -> Path:
    """ARTIFACT_ROOT/uploads/: where the web process stages uploaded files for the import job
    that picks them up (on any node sharing the artifact filesystem)."""
    return Path(settings.ARTIFACT_ROOT) / "uploads"


class UploadTooLarge(Exception):
    pass


class CappedUploadHandler(TemporaryFileUploadHandler):
    """Streams every uploaded file to a temporary file on disk (never memory) and stops at
    UPLOAD_MAX_BYTES in total."""

    def __init__(self, request=None):
        super().__init__(request)
        self.total = 0

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length and content_length > settings.UPLOAD_MAX_BYTES:
            raise UploadTooLarge()
        return None

    def receive_data_chunk(self, raw_data, start):
        self.total += len(raw_data)
        if self.total > settings.UPLOAD_MAX_BYTES:
            raise UploadTooLarge()
        return super().receive_data_chunk(raw_data, start)


def too_large_response(request, limit: int) -> HttpResponse:
    message = f"the upload is larger than the {limit // 1024**2} MiB limit (UPLOAD_MAX_BYTES)"
    if request.path.startswith("/api/"):
        return JsonResponse({"error": message}, status=413)
    return HttpResponse(message, status=413, content_type="text/plain")


def early_refusal(request) -> HttpResponse | None:
    """413 from the declared Content-Length, 507 when the artifact disk cannot hold it."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    limit = settings.UPLOAD_MAX_BYTES
    if length > limit:
        return too_large_response(request, limit)
    root = settings.ARTIFACT_ROOT
    root.mkdir(parents=True, exist_ok=True)
    if length and length * 2 + settings.DISK_SPARE_BYTES > shutil.disk_usage(root).free:
        return HttpResponse("not enough free disk on the server for this upload", status=507,
                            content_type="text/plain")
    return None


def capped_upload(view):
    """For views that take uploads: checks size and disk before reading the body, installs the
    capped handler, then runs `view` under CSRF protection (the handler must be installed before
    the CSRF check reads request.POST)."""
    protected = csrf_protect(view)

    @csrf_exempt
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method == "POST":
            refusal = early_refusal(request)
            if refusal is not None:
                return refusal
            request.upload_handlers = [CappedUploadHandler(request)]
        try:
            return protected(request, *args, **kwargs)
        except UploadTooLarge:
            return too_large_response(request, settings.UPLOAD_MAX_BYTES)

    wrapper.accepts_uploads = True  # quantdash.asgi.BodyLimit lets these take UPLOAD_MAX_BYTES
    return wrapper
