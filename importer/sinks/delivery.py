"""One event to Plausible: the tries, what each answer means, and the backoff between tries.

An answer is classified once: 202 is accepted (or dropped, with ``x-plausible-dropped``, tried
again only with ``retry_dropped``); 429, 5xx and tries without an answer are retried with
exponential backoff, full jitter and ``Retry-After`` within ``max_attempts`` and
``max_retry_s``; a 400 with Plausible's ``{"errors": ...}`` body is rejected; any other
status ends the event as failed, and another 2xx or a 3xx stops the run. Runs of tries that
point at a wrong or dead endpoint stop the run too (see :class:`~importer.sinks.endpoint.Streak`
and ``CONFIG_ERROR_LIMIT``).
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..ledger import Entry
from ..report import Report, redact_url
from .answers import ANSWER_LIMIT, Answer, certificate_message, plausible_errors, read_at_most
from .control import RunControl
from .endpoint import Streak, describe_error, host_of
from .outcomes import Outcomes, request_json
from .pacing import TokenBucket, backoff_delay, retry_after_seconds

if TYPE_CHECKING:
    import aiohttp

    from .http import SendOptions

# After this many events in a row answered with a status no retry can fix, and none accepted,
# the endpoint is taken to be wrong and the run stops instead of failing every event.
CONFIG_ERROR_LIMIT = 10
# Statuses that say the event itself can never be taken: failed, and not sent again later.
# Any other status no retry fixes (404, 405, 401...) points at the endpoint or the account,
# so a later run sends those events again.
FINAL_STATUSES = frozenset({413})


@dataclass
class _Tries:
    """One event's tries so far (local to :meth:`Delivery.deliver` and the helpers it calls)."""

    started: float
    errors_left: int
    drops_left: int
    count: int = 0
    timed_out: bool = False  # a try got no answer in time: the server may have recorded it
    counted_duplicate: bool = False
    last_error: str = ""
    shown: str = ""  # the last error in a few words, for the progress line


@dataclass(frozen=True)
class Link:
    """What every try goes through: the open session, the proxy, and the shared limits on
    connections (``slots``) and on the request rate (``bucket``)."""

    session: aiohttp.ClientSession
    proxy: str | None
    slots: asyncio.Semaphore
    bucket: TokenBucket


class Delivery:
    """Delivers one event at a time per caller (:meth:`deliver`), and settles it in ``outcomes``."""

    def __init__(
        self,
        options: SendOptions,
        link: Link,
        control: RunControl,
        outcomes: Outcomes,
        rng: random.Random,
        on_retry: Callable[[str], None],
    ):
        import aiohttp  # only when sending: its import costs ~0.1 s, which a dry run need not pay

        self.options = options
        self.link = link
        self.control = control
        self.outcomes = outcomes
        self.report: Report = outcomes.report
        self.rng = rng
        self.on_retry = on_retry
        self.host = host_of(options.endpoint)
        self.streak = Streak(options.max_unanswered)
        self.config_errors = 0  # events in a row refused with a status no retry fixes
        self.transport_errors = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
        self.certificate_errors = (aiohttp.ClientConnectorCertificateError, ssl.SSLCertVerificationError)
        self.connect_timeout = aiohttp.ConnectionTimeoutError  # the request never left: not a possible copy

    async def deliver(self, event: dict[str, Any], entry: Entry) -> None:
        o = self.options
        body = request_json(event)
        headers = self._headers(event)
        tries = _Tries(started=time.monotonic(), errors_left=o.max_attempts, drops_left=o.retry_dropped)
        while True:
            delay: float | None = None
            try:
                answer = await self._post(body, headers, tries)
                if answer is None:  # the run stopped while this event waited for a connection
                    if tries.count:
                        self._fail_stopped(event, entry, tries)
                    else:
                        self.outcomes.not_sent(event, entry)
                    return
                tries.count += 1
            except self.transport_errors as exc:
                tries.count += 1
                if not self._note_transport_error(exc, tries):
                    self.outcomes.fail(event, entry, f"not sent: {self.control.fatal}", resend=True)
                    return
            else:
                if answer.status == 202:
                    if await self._settle_202(event, answer, tries):
                        self.outcomes.settle(entry)
                        return
                    continue
                if answer.status != 429 and answer.status < 500:
                    self._settle_refusal(event, entry, answer, tries)
                    return
                tries.errors_left -= 1
                tries.last_error = f"HTTP {answer.status}: {answer.text[:300]}"
                delay = retry_after_seconds(answer.retry_after)
                tries.shown = f"HTTP {answer.status} from {self.host}"
                if answer.status >= 500:
                    self._note_unanswered(tries.shown, server_error=True)
            if not await self._wait_to_retry(event, entry, tries, delay):
                return

    def _headers(self, event: dict[str, Any]) -> dict[str, str]:
        headers = dict(self.options.headers)
        headers.update({"Content-Type": "application/json", "User-Agent": event["user_agent"] or ""})
        if event["ip"]:
            headers["X-Forwarded-For"] = event["ip"]
        return headers

    async def _post(self, body: bytes, headers: dict[str, str], tries: _Tries) -> Answer | None:
        """One try: the answer's status, headers and at most ANSWER_LIMIT bytes of its body.

        None, sending nothing, when the run stopped while waiting for a connection."""
        report, link = self.report, self.link
        async with link.slots:
            await link.bucket.acquire()
            if self.control.stopped:
                return None
            if not tries.count:
                report.sent += 1
            else:
                report.retries += 1
                if tries.timed_out and not tries.counted_duplicate:
                    tries.counted_duplicate = True  # an earlier copy may have arrived: this one may be a second
                    report.maybe_duplicated += 1
            # Never follow a redirect: it would carry the visitor's IP and user agent (and, for
            # 307/308, the event) to another host, maybe in clear text, and aiohttp turns a POST
            # into a bodyless GET on 301/302 whose 200 looks like success.
            async with link.session.post(
                self.options.endpoint, data=body, headers=headers, proxy=link.proxy, allow_redirects=False
            ) as response:
                raw = await read_at_most(response.content, ANSWER_LIMIT)
                # Leaving the block with the body unread closes the connection instead of draining it.
                dropped = (response.headers.get("x-plausible-dropped") or "").strip()
                return Answer(
                    status=response.status,
                    text=raw.decode("utf-8", "replace"),
                    dropped=dropped not in ("", "0"),
                    retry_after=response.headers.get("retry-after"),
                    location=response.headers.get("location"),
                )

    def _note_transport_error(self, exc: BaseException, tries: _Tries) -> bool:
        """Account a try that got no answer; False when the run must stop (an untrusted certificate)."""
        if isinstance(exc, self.certificate_errors):
            self.control.stop_run(certificate_message(redact_url(self.options.endpoint), exc))
            return False
        tries.errors_left -= 1
        if isinstance(exc, asyncio.TimeoutError) and not isinstance(exc, self.connect_timeout):
            # The request went out and no answer came in time: the server may have recorded it.
            self.report.timeouts += 1
            tries.timed_out = True
            tries.last_error = (
                f"no answer within {self.options.timeout_s:g} s (--timeout); the server may have recorded it"
            )
        else:
            tries.last_error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        tries.shown = describe_error(exc, self.host)
        self._note_unanswered(tries.shown, server_error=False)
        return True

    def _note_unanswered(self, error: str, server_error: bool) -> None:
        """A try without a usable answer: stop the run after too many in a row (see :class:`Streak`)."""
        report = self.report
        if self.streak.failed(error, server_error, anything_accepted=bool(report.accepted + report.dropped)):
            what = "answers with a server error" if server_error else "tries without an answer"
            self.control.stop_run(
                f"{self.streak.count} {what} in a row from {self.host}, the last: {error}; "
                "check --endpoint, that Plausible is running and reachable there (firewall, proxy), "
                "and its logs"
            )

    async def _settle_202(self, event: dict[str, Any], answer: Answer, tries: _Tries) -> bool:
        """Count Plausible's 202 as accepted or dropped; False when a drop is to be tried again."""
        o = self.options
        self.config_errors = 0
        self.streak.answered()
        if not answer.dropped:
            self.outcomes.count(event, "accepted")
            return True
        if tries.drops_left > 0 and not self.control.stopped:
            tries.drops_left -= 1
            tries.last_error = "dropped"
            await self.control.sleep(
                backoff_delay(o.retry_dropped - tries.drops_left, o.backoff_base_s, o.backoff_cap_s, self.rng)
            )
            if not self.control.stopped:
                return False
        self.outcomes.count(event, "dropped")
        return True

    def _settle_refusal(self, event: dict[str, Any], entry: Entry, answer: Answer, tries: _Tries) -> None:
        """An answer that no retry changes: another 2xx, a 3xx, a 400 or another 4xx."""
        status, endpoint = answer.status, redact_url(self.options.endpoint)
        error = f"HTTP {status}: {answer.text[:300]}"
        if status < 400:  # Plausible answers 202 or an error: this is something else
            where = f" (a redirect to {answer.location}; redirects are not followed)" if answer.location else ""
            self.control.stop_run(
                f"the endpoint {endpoint} answered HTTP {status}{where}, not Plausible's 202: nothing "
                "was delivered; check --endpoint (Plausible's is https://HOST/api/event) and any proxy "
                "or login page in front of it"
            )
            self.outcomes.fail(event, entry, error, resend=True, status=status, **_tried(tries))
            return
        errors = plausible_errors(answer.text) if status == 400 else None
        if errors is not None:
            self.outcomes.reject(event, entry, status=status, error=errors, **_tried(tries))
            hint = (
                f"the endpoint {endpoint} rejected the first {self.config_errors + 1} events (HTTP 400) and "
                "accepted none: check --domain and the mapping; the reasons are in the rejects file"
            )
        else:
            resend = status not in FINAL_STATUSES
            self.outcomes.fail(event, entry, error, resend=resend, status=status, **_tried(tries))
            hint = f"the endpoint {endpoint} answered HTTP {status} to the first {self.config_errors + 1} events" + (
                f' with a body that is not Plausible\'s {{"errors": ...}} ({answer.text[:80]!r}): '
                "something in front of Plausible (a proxy, a firewall) refuses them; check it and --endpoint"
                if status == 400
                else "; is --endpoint right?"
            )
        self._note_config_error(hint)

    def _note_config_error(self, message: str) -> None:
        self.config_errors += 1
        if self.config_errors >= CONFIG_ERROR_LIMIT and self.report.accepted + self.report.dropped == 0:
            self.control.stop_run(message)

    async def _wait_to_retry(self, event: dict[str, Any], entry: Entry, tries: _Tries, delay: float | None) -> bool:
        """Back off before the next try; False (and the event failed) when the limits say stop."""
        o = self.options
        if self.control.stopped:
            self._fail_stopped(event, entry, tries)
            return False
        if tries.errors_left <= 0:
            reason = f"failed after {o.max_attempts} attempts: {tries.last_error}"
            self.outcomes.fail(event, entry, reason, resend=True, **_tried(tries))
            return False
        wait = backoff_delay(tries.count - 1, o.backoff_base_s, o.backoff_cap_s, self.rng)
        if delay is not None:
            wait = max(wait, delay)
        elapsed = time.monotonic() - tries.started
        if elapsed + wait > o.max_retry_s:
            reason = f"gave up after {tries.count} attempts in {elapsed:.1f} s (--max-retry-time): {tries.last_error}"
            self.outcomes.fail(event, entry, reason, resend=True, **_tried(tries))
            return False
        self.on_retry(f"retrying: {tries.shown or tries.last_error}, attempt {tries.count + 1}/{o.max_attempts}")
        await self.control.sleep(wait)
        if self.control.stopped:
            self._fail_stopped(event, entry, tries)
            return False
        return True

    def _fail_stopped(self, event: dict[str, Any], entry: Entry, tries: _Tries) -> None:
        """The run stopped between two tries of this event: failed, to be sent again by the next run."""
        reason = f"{self.control.stopped_how()} during retries: {tries.last_error}"
        self.outcomes.fail(event, entry, reason, resend=True, **_tried(tries))


def _tried(tries: _Tries) -> dict[str, Any]:
    """For the failed and rejects files: whether an earlier try may have arrived after all."""
    return {"may_have_arrived": True} if tries.timed_out else {}
