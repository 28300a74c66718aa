"""pip's ``search`` (pypicloud 1.x's XML-RPC method): which projects match, for one caller.

pip sends ``search({"name": [terms], "summary": [terms]}, "or")``. A project
matches when its name (display or canonical) contains the name terms, or the
summary of its newest upload contains the summary terms, case-insensitively;
``"and"`` needs every term of a field, ``"or"`` any. Only projects the caller
may read are searched, so a search never reveals a private project.
"""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

from .errors import InvalidUpload
from .models import Identity

MAX_TERMS = 32
MAX_TERM_LENGTH = 200


def _terms(spec: dict, key: str) -> list[str]:
    value = spec.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise InvalidUpload(f"search: {key!r} must be a list of strings")
    if len(value) > MAX_TERMS or any(len(t) > MAX_TERM_LENGTH for t in value):
        raise InvalidUpload(f"search: at most {MAX_TERMS} terms of {MAX_TERM_LENGTH} characters")
    return [t.lower() for t in value if t]


def _matches(terms: list[str], texts: list[str], operator: str) -> bool:
    if not terms:
        return False
    found = [any(term in text for text in texts) for term in terms]
    return all(found) if operator == "and" else any(found)


def _newest_version(versions: list[str]) -> str:
    def key(text: str):
        try:
            return (1, Version(text))
        except InvalidVersion:
            return (0, Version("0"))

    return max(versions, key=key) if versions else ""


def search(service, identity: Identity, spec, operator="and") -> list[dict]:
    """``[{"name", "summary", "version"}]`` of the readable projects that match."""
    if not isinstance(spec, dict):
        raise InvalidUpload("search: the first argument must be a struct")
    if operator not in ("and", "or"):
        raise InvalidUpload("search: the operator must be 'and' or 'or'")
    names, summaries = _terms(spec, "name"), _terms(spec, "summary")
    results = []
    for summary in service.projects(identity):
        texts = [summary.name.lower(), summary.project]
        if _matches(names, texts, operator) or _matches(
            summaries, [(summary.summary or "").lower()], operator
        ):
            records = service.project_files(identity, summary.project)
            results.append(
                {
                    "name": summary.name,
                    "summary": summary.summary or "",
                    "version": _newest_version([r.version for r in records]),
                }
            )
    return results
