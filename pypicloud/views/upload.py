"""The legacy upload API (twine, uv publish, poetry, pdm) at ``/``, ``/simple/`` and ``/pypi``.

A ``multipart/form-data`` upload is read in one pass (:mod:`pypicloud.multipart_form`):
the file goes from the request body straight into its spool file. Other bodies
(and the web UI's form of several files, :func:`read_form`) are parsed by WebOb.
"""

from __future__ import annotations

import json
import re

from pyramid.response import Response
from pyramid.view import view_config

from .. import multipart_form
from ..errors import InvalidUpload, UploadTooLarge
from ..results import UploadForm
from ..spool import SpooledUpload

# Room for the other form fields around the file in a multipart body.
FORM_OVERHEAD = 1024 * 1024
DIGEST_FIELDS = ("sha256_digest", "md5_digest", "blake2_256_digest")
# twine sends about 25 parts; parsing costs ~80 us per part, so a body of
# 100,000 tiny parts would be seconds of CPU.
MAX_FORM_PARTS = 1000
_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^\s;]+))', re.IGNORECASE)
# The most bytes of form fields besides the file when pypi.max_upload_size is unset.
MAX_TEXT_UNLIMITED = 64 * 1024 * 1024


def _count_parts(request, most: int) -> int:
    """How many multipart parts the body holds (a scan for the boundary, no parsing)."""
    found = _BOUNDARY.search(request.headers.get("Content-Type", ""))
    if found is None:
        return 0
    marker = b"--" + (found.group(1) or found.group(2)).encode("latin-1")
    original = request.environ.get("wsgi.input")
    body = request.body_file_seekable
    if body is not original:
        # WebOb copied the body into a temporary file of its own: close it when the
        # request ends rather than leave the descriptor to the garbage collector.
        request.add_finished_callback(lambda _request: body.close())
    body.seek(0)
    count, tail = 0, b""
    while count <= most:
        block = body.read(1024 * 1024)
        if not block:
            break
        data = tail + block
        count += data.count(marker)
        # Keep the end (shorter than a marker, so never counted twice): a
        # marker split between two reads is still seen.
        tail = data[-(len(marker) - 1) :]
    body.seek(0)
    return count


def read_form(request, limit: int | None = -1):
    """The parsed form, or 413/400 without reading a body we will refuse anyway.

    ``limit``: the largest file (default ``pypi.max_upload_size``; None: none).
    """
    if limit == -1:
        limit = request.services.service.max_upload_size
    _refuse_long_body(request, limit)
    if _count_parts(request, MAX_FORM_PARTS) > MAX_FORM_PARTS:
        raise InvalidUpload(f"Too many form parts (more than {MAX_FORM_PARTS})")
    try:
        form = request.POST
        # Touch every value now so broken encodings fail here, as a 400.
        list(form.items())
    except Exception:
        raise InvalidUpload("Malformed upload request body") from None
    request.add_finished_callback(_close_file_parts)
    return form


def _refuse_long_body(request, limit: int | None) -> None:
    if limit is not None and (request.content_length or 0) > limit + FORM_OVERHEAD:
        raise UploadTooLarge(f"Upload is larger than the limit of {limit} bytes")


def stream_form(request):
    """An upload's form: a multipart body parsed as it is read, its ``content``
    file spooled on the way (removed when the request ends); other bodies by WebOb."""
    service = request.services.service
    limit = service.max_upload_size
    if request.content_type != "multipart/form-data":
        return read_form(request, limit)
    _refuse_long_body(request, limit)

    def open_spool(seen: frozenset[str]) -> SpooledUpload:
        # blake2 is only compared with the client's digest: hashed while
        # spooling when the client sent one before the file (twine does).
        return SpooledUpload.writer(limit, service.spool_dir, "blake2_256_digest" in seen)

    length = request.content_length
    form = multipart_form.read_multipart(
        request.environ["wsgi.input"] if length is not None else request.body_file,
        request.headers.get("Content-Type", ""),
        length,
        open_spool,
        max_parts=MAX_FORM_PARTS,
        max_text=MAX_TEXT_UNLIMITED if limit is None else limit + FORM_OVERHEAD,
    )
    request.add_finished_callback(lambda _request: form.close())
    return form


def _close_file_parts(request) -> None:
    """Close the form's file parts (WebOb's temporary files) when the request ends,
    instead of leaving their descriptors to the garbage collector."""
    for value in request.POST.values():
        part = getattr(value, "file", None)
        if part is not None and not isinstance(value, str):
            try:
                part.close()
            except OSError:
                pass


def text_field(form, key: str) -> str | None:
    value = form.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidUpload(f"Form field {key!r} must be text")
    return value


def file_field(form, key: str = "content"):
    value = form.get(key)
    if value is None or isinstance(value, str) or getattr(value, "file", None) is None:
        return None, None
    return value.filename, value.file


def upload_form(request, action: bool = True) -> UploadForm:
    """The upload fields of the request's form (parsed here, on the service's call)."""
    form = stream_form(request)
    filename, stream = file_field(form)
    return UploadForm(
        action=text_field(form, ":action") if action else None,
        name=text_field(form, "name"),
        version=text_field(form, "version"),
        filename=filename,
        content=stream,
        digests=lambda: {k: text_field(form, k) or "" for k in DIGEST_FIELDS},
    )


@view_config(route_name="upload.root", request_method="POST")
@view_config(route_name="upload.pypi", request_method="POST")
@view_config(route_name="upload.pypi_slash", request_method="POST")
@view_config(route_name="simple.index", request_method="POST")
def legacy_upload(request):
    result = request.services.service.legacy_upload(request.identity, lambda: upload_form(request))
    # pypicloud 1.x answered with the file as JSON (the REST API's shape); upload clients
    # only read the status.
    from .api import file_json

    message = "Uploaded" if result.created else "Already uploaded (identical file)"
    body = dict(
        file_json(request, result.record),
        created=result.created,
        message=f"{message}: {result.record.filename}",
    )
    return Response(json.dumps(body), content_type="application/json", charset="utf-8")
