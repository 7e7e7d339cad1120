"""Reading a large request body within a bound: a JSON document, or a multipart upload of one
file (written to a temporary directory, removed when the request is done).

The bound is checked against ``Content-Length`` before anything is read and against the
bytes as they arrive (a chunked body declares no length), so an upload over the limit is a
413 after at most ``limit`` bytes, whatever it claims.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from learnloop.errors import LearnloopError, ValidationError

FILE_FIELD = "file"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


class PayloadTooLargeError(LearnloopError):
    code = "payload_too_large"


class UnsupportedMediaTypeError(LearnloopError):
    code = "unsupported_media_type"


@dataclass(frozen=True)
class Upload:
    fields: dict[str, str]  # the form's other fields
    path: Path  # the uploaded file, on local disk
    filename: str  # as the client named it


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def _bounded(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise _too_large(limit)
        yield chunk


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"the request body is larger than {limit:,} bytes (Limits.max_upload_bytes)")


async def read_body(request: Request, limit: int) -> bytes:
    return b"".join([chunk async for chunk in _bounded(request, limit)])


@asynccontextmanager
async def multipart_upload(request: Request, limit: int) -> AsyncIterator[Upload]:
    """The form's fields and its one file part (named ``file``), saved under a temporary directory."""
    parser = MultiPartParser(request.headers, _bounded(request, limit), max_files=1, max_fields=32)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ValidationError(f"malformed multipart body: {exc.message}", field=FILE_FIELD) from exc
    try:
        upload = form.get(FILE_FIELD)
        if not isinstance(upload, UploadFile):
            raise ValidationError(
                f"a multipart body needs the data as a file part named {FILE_FIELD!r}", field=FILE_FIELD
            )
        fields = {key: value for key, value in form.multi_items() if isinstance(value, str)}
        filename = upload.filename or "upload"
        with tempfile.TemporaryDirectory(prefix="learnloop-upload-") as directory:
            path = Path(directory) / (_SAFE_NAME.sub("_", Path(filename).name)[-100:].lstrip(".") or "upload")
            await run_in_threadpool(_save, upload, path)
            yield Upload(fields, path, filename)
    finally:
        await form.close()


def _save(upload: UploadFile, path: Path) -> None:
    upload.file.seek(0)
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)
