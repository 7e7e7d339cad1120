"""Schemathesis hooks for ``tests/e2e/test_fuzz_http.py`` (loaded by ``st run`` through
``SCHEMATHESIS_HOOKS``, in its own process).

* Credentials: with ``LEARNLOOP_FUZZ_KEY`` set every request carries that key (and no generated
  ``Authorization``); without it, none (the anonymous pass): generated keys would only be
  throttled (429) after 20 failures, and the pass would test nothing else.
* ``refusals_are_problem_json``: every 4xx and 5xx answer is RFC 9457 problem+json with a
  stable ``code`` and the response's own ``status``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis

CREDENTIAL_HEADERS = ("x-api-key", "authorization")


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in CREDENTIAL_HEADERS}
    key = os.environ.get("LEARNLOOP_FUZZ_KEY")
    if key:
        headers["X-API-Key"] = key
    case.headers = headers
    sent = kwargs.get("headers")
    if isinstance(sent, dict):  # headers the runner adds itself (config, -H)
        for name in [k for k in sent if k.lower() in CREDENTIAL_HEADERS]:
            del sent[name]
        if key:
            sent["X-API-Key"] = key


@schemathesis.check
def refusals_are_problem_json(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code < 400:
        return None
    media = response.headers.get("content-type", [""])
    media = media[0] if isinstance(media, list) else media
    assert media.startswith("application/problem+json"), f"{response.status_code} answered as {media!r}"
    body = json.loads(response.content)
    assert isinstance(body, dict), "a problem is a JSON object"
    assert body.get("status") == response.status_code, f"problem status {body.get('status')}"
    assert isinstance(body.get("code"), str) and body["code"], "a problem has a stable code"
    return None
