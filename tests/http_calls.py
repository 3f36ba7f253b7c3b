"""The `responses` calls a test made to one URL.

`responses` patches requests for the whole process, so a request from a thread another test
left behind (a worker abandoned at its deadline, retrying a closed local server) is recorded
too. Counting `responses.calls` whole makes a test flaky; count the calls to the URL under test.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import responses


def calls_to(url: str) -> list[responses.Call]:
    """The recorded calls to `url` (its query string ignored), in order."""
    want = urlsplit(url)._replace(query="", fragment="")
    return [call for call in responses.calls
            if urlunsplit(urlsplit(call.request.url or "")._replace(query="", fragment="")) == urlunsplit(want)]
