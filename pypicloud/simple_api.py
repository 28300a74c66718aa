"""The simple repository API's media types (PEP 691), named once.

Used by content negotiation (:mod:`pypicloud.views.negotiation`) and by the
upstream client (:mod:`pypicloud.upstream`), which asks another index for them.
"""

from __future__ import annotations

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
# The unversioned aliases a client may ask for (PEP 691 "latest").
LATEST_JSON = "application/vnd.pypi.simple.latest+json"
LATEST_HTML = "application/vnd.pypi.simple.latest+html"
