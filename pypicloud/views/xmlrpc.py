"""pip's XML-RPC ``search`` at ``POST /pypi`` (``pip search --index http://host/pypi q``).

pypicloud 1.x answered it; uploads to the same URL are multipart forms, so the
XML body (``Content-Type: text/xml``) tells the two apart. The body is read with
a small size bound and documents with a DOCTYPE (the way to entity expansion)
are refused before the standard library's parser sees them. Errors are XML-RPC
faults (HTTP 200), as every XML-RPC client expects; login failures stay 401.
"""

from __future__ import annotations

import xmlrpc.client
from xml.parsers.expat import ExpatError

from pyramid.response import Response
from pyramid.view import view_config

from ..errors import PypicloudError
from ..search import search

MAX_BODY = 64 * 1024
# Fault codes of the XML-RPC error-code convention (also what pyramid_rpc used in 1.x).
PARSE_ERROR, INVALID_REQUEST, NO_METHOD, INVALID_PARAMS = -32700, -32600, -32601, -32602


def _answer(result) -> Response:
    if isinstance(result, xmlrpc.client.Fault):
        body = xmlrpc.client.dumps(result, methodresponse=True)
    else:
        body = xmlrpc.client.dumps((result,), methodresponse=True)
    return Response(body=body.encode("utf-8"), content_type="text/xml", charset="utf-8")


def _call(request):
    if (request.content_length or 0) > MAX_BODY:
        return xmlrpc.client.Fault(INVALID_REQUEST, f"Request larger than {MAX_BODY} bytes")
    body = request.body_file.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return xmlrpc.client.Fault(INVALID_REQUEST, f"Request larger than {MAX_BODY} bytes")
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        return xmlrpc.client.Fault(INVALID_REQUEST, "DOCTYPE and ENTITY are not accepted")
    try:
        params, method = xmlrpc.client.loads(body)
    except (ExpatError, xmlrpc.client.ResponseError, ValueError, TypeError):
        return xmlrpc.client.Fault(PARSE_ERROR, "Not an XML-RPC request")
    if method != "search":
        return xmlrpc.client.Fault(NO_METHOD, f"Method {method!r} is not supported; only search")
    if not 1 <= len(params) <= 2:
        return xmlrpc.client.Fault(INVALID_PARAMS, "search(spec[, operator])")
    try:
        return search(request.services.service, request.identity, *params)
    except PypicloudError as exc:
        if exc.status in (401, 403) or exc.status >= 500:
            raise
        return xmlrpc.client.Fault(INVALID_PARAMS, exc.message)


@view_config(
    route_name="upload.pypi", request_method="POST", header="Content-Type:^\\s*(text|application)/xml"
)
@view_config(
    route_name="upload.pypi_slash", request_method="POST", header="Content-Type:^\\s*(text|application)/xml"
)
def xmlrpc_endpoint(request):
    return _answer(_call(request))
