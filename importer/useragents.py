"""Which user agents are people: a pattern list classified once per distinct user agent.

Plausible drops what Matomo's device-detector calls a bot, plus Headless Chrome. Replaying
such rows only wastes requests (they come back dropped), and for the CSV backfill they would
inflate every figure, so the importer filters them itself, under a reason per kind:

* ``empty_user_agent``: no User-Agent header at all;
* ``headless_browser``: HeadlessChrome, PhantomJS, Puppeteer, Playwright, Selenium...;
* ``monitoring``: uptime checkers and health probes (UptimeRobot, Pingdom, kube-probe...);
* ``http_client``: HTTP libraries and command-line clients (curl, wget, python-requests,
  Go-http-client, okhttp...), which device-detector calls "library" clients;
* ``bot``: crawlers, spiders, feed fetchers, link previewers, SEO and AI scrapers.

Classification runs once per distinct user agent (a log has few) and is cached across
batches, then mapped back onto rows with Arrow, so its cost does not grow with row count.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

HEADLESS = (
    r"headlesschrome|headless chrome|phantomjs|puppeteer|playwright|selenium|webdriver|slimerjs|"
    r"htmlunit|zombie\.js|nightmarejs|prerender|rendertron|chrome-lighthouse|lighthouse|"
    r"electron/[\d.]+ .*\bnode\b"
)
MONITORING = (
    r"uptimerobot|pingdom|statuscake|site24x7|newrelicpinger|new relic|datadog|nagios|zabbix|"
    r"check_http|monitoring-plugins|uptime-kuma|uptime kuma|betteruptime|better uptime|better stack|"
    r"freshping|hetrixtools|uptime\.com|monitis|catchpoint|gtmetrix|kube-probe|elb-healthchecker|"
    r"googlehc|google-cloud-healthcheck|consul health|blackbox[ _-]exporter|prometheus|icinga|"
    r"sensu|pulsetic|checkly|cron-job\.org|updown\.io|nodeping|montastic|alertsite|dotcom-monitor|"
    r"pagespeed|statusgator|healthcheck|health-check|amazon-route53-health|azure traffic manager"
)
HTTP_CLIENTS = (
    r"^curl/|\bcurl/|^wget/|\bwget\b|python-requests|python-urllib|python-httpx|python/[\d.]+ aiohttp|"
    r"\baiohttp/|go-http-client|\bokhttp\b|^java/|\bjava/[\d.]+$|apache-httpclient|libwww-perl|lwp::|"
    r"^httpie/|\bhttpie\b|node-fetch|^axios/|\baxios/|\bundici\b|^got \(|guzzlehttp|^ruby\b|faraday|"
    r"restsharp|postmanruntime|insomnia/|powershell|winhttp|http_request2|^php/|\bphp/[\d.]+$|reqwest|"
    r"hackney|^mint/|^finch|^dart:io|^dart/|libcurl|^httpclient|jakarta commons-httpclient|"
    r"^okhttp|^grpc-|^aws-sdk|^boto|botocore|^google-api-|^apache-cxf|^feign|^fasthttp|"
    r"^rest-client|^typhoeus|^excon|^httparty|^mechanize|^scrapy|^colly|^nutch|^heritrix|^wordpress/|"
    r"^jersey/|^vert\.x|^ktor-client|^unirest|^requests/|^urllib|^libfetch|^fetch/|^deno/|^bun/|^node\b"
)
BOTS = (
    r"(?<!cu)bot\b|bot[/_;:-]|crawl|spider|slurp|archiver|facebookexternalhit|facebookcatalog|"
    r"mediapartners-google|adsbot|bingpreview|yandex(?!search|browser)|baiduspider|duckduckbot|semrush|ahrefs|mj12|"
    r"dotbot|petalbot|bytespider|gptbot|chatgpt-user|oai-searchbot|claudebot|claude-web|anthropic-ai|"
    r"ccbot|applebot|amazonbot|perplexity|feedfetcher|feedly|feedburner|newsblur|inoreader|"
    r"\brss\b|rss reader|scrapy|python-scrapy|ia_archiver|wayback|heritrix|nutch|"
    r"linkchecker|link checker|w3c_validator|validator\.nu|check_link|linkdex|screaming frog|"
    r"sitebulb|seokicks|seznambot|qwantify|exabot|360spider|yeti/|"
    r"mail\.ru_bot|whatsapp|telegrambot|skypeuripreview|slackbot|discordbot|"
    r"embedly|quora link preview|vkshare|redditbot|iframely|outbrain|flipboardproxy|nuzzel|"
    r"google-read-aloud|google-inspectiontool|google-safety|googleother|google-extended|"
    r"storebot-google|apis-google|feedvalidator|xenu|httrack|wkhtmlto|dataprovider|netcraft|"
    r"censys|zgrab|masscan|nmap|nikto|sqlmap|acunetix|nessus|qualys|openvas|wpscan|"
    r"expanse|internetmeasurement|leakix|paloalto|\bscan(ner)?\b|crawler|fetcher|"
    r"\+https?://|@[a-z0-9-]+\.[a-z]{2,}|\bcompatible; [^;)]*(bot|spider|crawler)"
)

_CATEGORIES = (
    ("headless_browser", re.compile(HEADLESS, re.IGNORECASE)),
    ("monitoring", re.compile(MONITORING, re.IGNORECASE)),
    ("http_client", re.compile(HTTP_CLIENTS, re.IGNORECASE)),
    ("bot", re.compile(BOTS, re.IGNORECASE)),
)

REASONS = ("empty_user_agent", "headless_browser", "monitoring", "http_client", "bot")


def classify(user_agent: str | None) -> str | None:
    """The reason a user agent is not a person, or None for a person's browser."""
    if user_agent is None:
        return "empty_user_agent"
    ua = user_agent.strip()
    if not ua or ua == "-":
        return "empty_user_agent"
    for reason, pattern in _CATEGORIES:
        if pattern.search(ua):
            return reason
    return None


class Classifier:
    """Classifies a column of user agents, each distinct value once per run."""

    def __init__(self) -> None:
        self._cache: dict[str | None, str | None] = {}

    def classify_column(self, user_agents: pa.Array) -> pa.Array:
        encoded = pc.dictionary_encode(user_agents)
        cache = self._cache
        reasons = []
        for ua in encoded.dictionary.to_pylist():
            reason = cache.get(ua, "?")
            if reason == "?":
                reason = cache[ua] = classify(ua)
            reasons.append(reason)
        reason_column = pc.take(pa.array(reasons, type=pa.string()), encoded.indices)
        # dictionary_encode leaves nulls as null indices: those rows have no user agent at all.
        return pc.if_else(pc.is_null(user_agents), pa.scalar("empty_user_agent"), reason_column)

    @property
    def distinct_seen(self) -> int:
        return len(self._cache)
