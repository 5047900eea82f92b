"""The receiver answers like Plausible's /api/event: 202 "ok" (or flagged dropped), 400 with the `{"errors": ...}` shape
for invalid events, the payload limits of `lib/plausible/ingestion/request.ex`."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
from conftest import BROWSER, wait_for

GOOD = {"name": "pageview", "url": "https://example.com/a", "domain": "example.com"}


def post(
    receiver, body, content_type="application/json", user_agent=BROWSER, raw: bytes | None = None, timeout: float = 5
):
    data = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(
        receiver.endpoint,
        content=data,
        headers={"Content-Type": content_type, "User-Agent": user_agent, "X-Forwarded-For": "203.0.113.5"},
        timeout=timeout,
    )


def test_an_accepted_event_is_202_ok_and_recorded_with_its_headers(receiver):
    response = post(receiver, {**GOOD, "referrer": "https://www.example.org/", "props": {"plan": "pro", "n": 3}})
    assert (response.status_code, response.text) == (202, "ok")
    assert "x-plausible-dropped" not in response.headers
    (event,) = receiver.events
    assert event["url"] == GOOD["url"] and event["referrer"] == "https://www.example.org/"
    assert event["props"] == {"plan": "pro", "n": "3"}  # values become strings, as in Plausible
    assert (event["user_agent"], event["x_forwarded_for"]) == (BROWSER, "203.0.113.5")


def test_aliases_and_text_plain_bodies_are_read_as_the_tracker_sends_them(receiver):
    response = post(
        receiver, {"n": "pageview", "u": "https://example.com/b", "d": "example.com"}, content_type="text/plain"
    )
    assert response.status_code == 202
    assert receiver.events[0]["url"] == "https://example.com/b"


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"url": "https://example.com/", "domain": "example.com"}, {"event_name": ["can't be blank"]}),
        ({"name": " ", "url": "https://example.com/", "domain": "example.com"}, {"event_name": ["can't be blank"]}),
        ({**GOOD, "name": "x" * 121}, {"event_name": ["should be at most 120 character(s)"]}),
        ({"name": "pageview", "domain": "example.com"}, {"url": ["is required"]}),
        ({**GOOD, "url": "https://example.com/" + "a" * 2000}, {"url": ["must be a valid url"]}),
        ({**GOOD, "url": "data:text/html,hi"}, {"url": ["scheme is not allowed"]}),
        ({**GOOD, "domain": ""}, {"domain": ["can't be blank"]}),
        ({**GOOD, "props": {"k" * 301: "v"}}, {"props": ["keys should have at most 300 bytes and values 2000 bytes"]}),
        ({**GOOD, "props": {"k": "v" * 2001}}, {"props": ["keys should have at most 300 bytes and values 2000 bytes"]}),
        ({"domain": "example.com"}, {"event_name": ["can't be blank"], "url": ["is required"]}),
    ],
)
def test_invalid_events_get_400_with_plausibles_error_shape(receiver, body, errors):
    response = post(receiver, body)
    assert response.status_code == 400
    assert response.json() == {"errors": errors}
    assert receiver.events == []


def test_a_missing_domain_falls_back_to_the_url_host(receiver):
    assert post(receiver, {"name": "pageview", "url": "https://www.example.com/x"}).status_code == 202
    assert receiver.events[0]["domain"] == "example.com"


def test_bodies_that_are_not_json_objects(receiver):
    bad_json = post(receiver, None, raw=b"{not json")
    assert bad_json.status_code == 400 and bad_json.json() == {"status": 400, "message": "Bad Request"}
    not_object = post(receiver, None, content_type="text/plain", raw=b"[1, 2]")
    assert not_object.json() == {"errors": {"request": ["Unable to parse request body as json"]}}


@pytest.mark.parametrize(
    "user_agent",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/122.0.0.0 Safari/537.36",
    ],
)
def test_bots_are_answered_202_with_x_plausible_dropped(receiver, user_agent):
    response = post(receiver, GOOD, user_agent=user_agent)
    assert (response.status_code, response.text, response.headers["x-plausible-dropped"]) == (202, "ok", "1")
    assert receiver.events == [] and receiver.stats.dropped == 1


def test_hold_keeps_later_answers_waiting_until_release(receiver):
    receiver.hold(after=2)
    assert [post(receiver, GOOD).status_code for _ in range(2)] == [202, 202]
    answers: list[int] = []
    late = threading.Thread(target=lambda: answers.append(post(receiver, GOOD, timeout=120).status_code))
    late.start()
    wait_for(lambda: receiver.stats.held == 1)
    assert len(receiver.events) == 3 and answers == []  # recorded, not answered
    receiver.release()
    late.join(120)
    assert answers == [202] and receiver.stats.held == 0
    assert post(receiver, GOOD).status_code == 202  # released for good
    wait_for(lambda: receiver.stats.open_connections == 0)  # each httpx.post closes its connection
