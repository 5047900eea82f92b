"""Which user agents are people: a pattern list classified once per distinct user agent.

Plausible drops what Matomo's device-detector calls a bot, plus Headless Chrome. Replaying
such rows only wastes requests (they come back dropped), and for the CSV backfill they would
inflate every figure, so the importer filters them itself, under a reason per kind:

* ``empty_user_agent``: no User-Agent header at all;
* ``headless_browser``: HeadlessChrome, PhantomJS, Puppeteer, Playwright, Selenium...;
* ``monitoring``: uptime checkers and health probes (UptimeRobot, Pingdom, kube-probe...);
* ``http_client``: HTTP libraries and command-line clients (curl, wget, python-requests,
  Go-http-client, okhttp...), which device-detector calls "library" clients;
* ``bot``: crawlers, spiders, feed fetchers, link previewers, SEO and AI scrapers, and
  whatever the maintained CrawlerDetect list (the ``crawlerdetect`` package) calls a crawler.

Classification runs once per distinct user agent (a log has few) and is cached across
batches, then mapped back onto rows with Arrow, so its cost does not grow with row count.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

import numpy as np
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
    if is_listed_crawler(ua):
        return "bot"
    return None


class Classifier:
    """Classifies a column of user agents, each distinct value once per run."""

    def __init__(self) -> None:
        self._cache: dict[str | None, str | None] = {}

    def classify_column(self, user_agents: pa.Array) -> pa.Array:
        """Per row, the reason its user agent is not a person's (null for a person's browser)."""
        reasons = np.array([*REASONS, None], dtype=object)  # code -1 (a browser) picks the None
        return pa.array(reasons[self.classify_codes(user_agents)], type=pa.string())

    def classify_codes(self, user_agents: pa.Array, if_null: str | None = "empty_user_agent") -> np.ndarray:
        """Per row, the position of its reason in ``REASONS`` (-1 for a person's browser);
        rows without a user agent get ``if_null``. A NumPy column, cheap to turn into masks."""
        encoded = pc.dictionary_encode(user_agents)
        distinct = encoded.dictionary.to_pylist()
        self._learn(distinct)
        cache = self._cache
        at: dict[str | None, int] = {reason: i for i, reason in enumerate(REASONS)}  # a browser (None) is absent
        codes = [at.get(cache[ua], -1) for ua in distinct]
        codes.append(at.get(if_null, -1))  # null rows: dictionary_encode leaves their index null
        indices = encoded.indices
        if indices.null_count:
            indices = pc.fill_null(indices, len(codes) - 1)
        # (as NumPy's own index type: indexing with int32 positions is several times slower)
        return np.array(codes, np.int8)[indices.to_numpy(zero_copy_only=False).astype(np.intp)]

    def _learn(self, distinct: list[str | None]) -> None:
        """Classify the user agents not seen before in this run.

        Python regexes cost ~0.5 ms per agent with CrawlerDetect's list, which on a busy site
        with tens of thousands of distinct agents would dominate the run. So RE2 (Arrow's
        regex engine, microseconds per agent) first marks the candidates with patterns that
        match a superset of what ours and CrawlerDetect's match; only candidates go through
        :func:`classify`, the others are browsers for certain.
        """
        cache = self._cache
        new = [ua for ua in distinct if ua not in cache]
        if not new:
            return
        candidates = _candidates(new)
        for ua, candidate in zip(new, candidates, strict=True):
            cache[ua] = classify(ua) if candidate else None

    @property
    def distinct_seen(self) -> int:
        return len(self._cache)


# --- Crawler list maintained upstream -------------------------------------------------------
# After our own categories, a user agent that looks like a browser is checked against the
# crawler list of the ``crawlerdetect`` package (a port of the maintained CrawlerDetect
# patterns): what it flags counts as ``bot``. It costs ~0.1 ms per distinct user agent.
try:  # pragma: no branch - the package is a declared dependency
    from crawlerdetect import CrawlerDetect as _CrawlerDetect
except ImportError:  # pragma: no cover - a broken install falls back to our own list
    _CrawlerDetect = None

_crawler_detect = None


def _without_lookarounds(pattern: str) -> str:
    """The pattern with its lookaround groups removed: RE2 has none, and dropping a
    lookaround only ever widens what a pattern matches, which is what a pre-filter needs."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith(("(?<!", "(?<=", "(?!", "(?="), i):
            depth, j = 0, i
            while j < len(pattern):
                if pattern[j] == "\\":
                    j += 2
                    continue
                if pattern[j] == "(":
                    depth += 1
                elif pattern[j] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            i = j + 1
            continue
        if pattern[i] == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        out.append(pattern[i])
        i += 1
    return "".join(out)


_PREFILTER: tuple[str, str | None, str | None] | None = None


def _prefilter_patterns() -> tuple[str, str | None, str | None]:
    """(our categories, CrawlerDetect's exclusions, CrawlerDetect's crawlers) for RE2."""
    global _PREFILTER
    if _PREFILTER is None:
        ours = _without_lookarounds("|".join(p.pattern for _, p in _CATEGORIES))
        exclusions = crawlers = None
        if _CrawlerDetect is not None:
            from crawlerdetect import crawlerdetect as upstream

            exclusions = _without_lookarounds(upstream.get_compiled_exclusions_regex().pattern)
            crawlers = _without_lookarounds(upstream.get_compiled_crawler_regex().pattern)
        _PREFILTER = (ours, exclusions, crawlers)
    return _PREFILTER


def _candidates(user_agents: list[str | None]) -> list[bool]:
    """Per user agent: might it be anything but a person's browser? (Never a false "no".)"""
    ours, exclusions, crawlers = _prefilter_patterns()
    values = pc.utf8_trim_whitespace(pa.array(user_agents, pa.string()))
    try:
        hit = pc.match_substring_regex(values, ours, ignore_case=True)
        if crawlers is not None:
            # CrawlerDetect strips browser tokens first, then searches what is left.
            left = pc.replace_substring_regex(values, f"(?i){exclusions}", "")
            hit = pc.or_(hit, pc.match_substring_regex(left, crawlers, ignore_case=True))
    except pa.ArrowInvalid:  # pragma: no cover - a pattern RE2 cannot take: check every agent
        return [True] * len(user_agents)
    empty = pc.or_(pc.is_null(values), pc.is_in(values, value_set=pa.array(["", "-"])))
    return pc.fill_null(pc.or_(hit, empty), True).to_pylist()


def is_listed_crawler(user_agent: str) -> bool:
    """True when the maintained CrawlerDetect list calls this user agent a crawler."""
    global _crawler_detect
    if _CrawlerDetect is None:
        return False
    if _crawler_detect is None:
        _crawler_detect = _CrawlerDetect()
    return bool(_crawler_detect.isCrawler(user_agent))


# --- Synthetic visitors for exports without IPs or user agents ------------------------------

SYNTHETIC_NETWORK = "2001:db8::/32"  # IPv6 documentation range: never routed, never geolocated


def synthetic_ip(visitor_id: str) -> str:
    """A stable address in 2001:db8::/32 for one source visitor id (same id, same address)."""
    digest = hashlib.blake2b(visitor_id.encode("utf-8"), digest_size=12, person=b"plausible-imp").digest()
    return str(ipaddress.IPv6Address(bytes.fromhex("20010db8") + digest))  # RFC 5952 text: no leading zeros


_BROWSER_ALIASES = {
    "chrome": "chrome",
    "ch": "chrome",
    "chrome mobile": "chrome",
    "chrome mobile ios": "chrome",
    "chromium": "chrome",
    "google chrome": "chrome",
    "crios": "chrome",
    "firefox": "firefox",
    "ff": "firefox",
    "firefox mobile": "firefox",
    "mozilla firefox": "firefox",
    "safari": "safari",
    "sf": "safari",
    "mobile safari": "safari",
    "safari (in-app)": "safari",
    "edge": "edge",
    "microsoft edge": "edge",
    "ps": "edge",
    "edg": "edge",
    "opera": "opera",
    "op": "opera",
    "samsung internet": "samsung",
    "samsung browser": "samsung",
    "samsungbrowser": "samsung",
    "sb": "samsung",
    "samsung": "samsung",
    "edge-chromium": "edge",
    "ios": "safari",
    "ios-webview": "safari",
    "fxios": "firefox",
    "chromium-webview": "chrome",
}
_OS_ALIASES = {
    "windows": "windows",
    "win": "windows",
    "win32": "windows",
    "windows 10": "windows",
    "windows 11": "windows",
    "macintosh": "macos",
    "mac": "macos",
    "macos": "macos",
    "mac os x": "macos",
    "mac os": "macos",
    "os x": "macos",
    "linux": "linux",
    "lin": "linux",
    "ubuntu": "linux",
    "chrome os": "chromeos",
    "chromeos": "chromeos",
    "cros": "chromeos",
    "android": "android",
    "and": "android",
    "ios": "ios",
    "iphone os": "ios",
    "ipados": "ipados",
}
_DEVICE_ALIASES = {
    "desktop": "desktop",
    "laptop": "desktop",
    "computer": "desktop",
    "pc": "desktop",
    "mobile": "mobile",
    "smartphone": "mobile",
    "phone": "mobile",
    "tablet": "tablet",
}
_DEFAULT_VERSIONS = {
    "chrome": "120.0.0.0",
    "edge": "120.0.0.0",
    "opera": "106.0.0.0",
    "firefox": "121.0",
    "safari": "17.0",
    "samsung": "23.0",
}
_VERSION = re.compile(r"^\d+(\.\d+){0,3}$")


def _norm(value: str | None, table: dict[str, str]) -> str | None:
    if value is None:
        return None
    key = value.strip().lower()
    if key in table:
        return table[key]
    # "Windows 10", "Mac OS X 10.15", "Android OS", "edge-chromium", "Chrome Mobile WebView"...
    for alias in sorted(table, key=len, reverse=True):
        if len(alias) > 2 and re.match(rf"{re.escape(alias)}\b", key):
            return table[alias]
    return None


def synthetic_user_agent(
    device: str | None = None,
    browser: str | None = None,
    browser_version: str | None = None,
    os: str | None = None,
    os_version: str | None = None,
) -> str:
    """A browser User-Agent that device detection reads back as the given device, browser and OS.

    Unknown or missing parts fall back to the most common choice (desktop, Chrome, Windows),
    mobile devices to Android and tablets to iPadOS when the OS is unknown.
    """
    kind = _norm(device, _DEVICE_ALIASES)
    brand = _norm(browser, _BROWSER_ALIASES) or (
        "safari" if _norm(os, _OS_ALIASES) in ("ios", "ipados", "macos") and browser is None else "chrome"
    )
    system = _norm(os, _OS_ALIASES)
    if system is None:
        system = {"mobile": "android", "tablet": "ipados"}.get(kind or "", "windows")
    if kind is None:
        kind = "mobile" if system in ("android", "ios") else "tablet" if system == "ipados" else "desktop"
    if system == "ios" and kind == "tablet":
        system = "ipados"
    version = browser_version.strip() if browser_version and _VERSION.match(browser_version.strip()) else None
    version = version or _DEFAULT_VERSIONS[brand]
    if "." not in version:
        version += ".0"
    osv = os_version.strip() if os_version and _VERSION.match(os_version.strip()) else None
    mobile = kind == "mobile"
    if system in ("ios", "ipados"):
        ios = (osv or "17.0").replace(".", "_")
        platform = (
            f"iPhone; CPU iPhone OS {ios} like Mac OS X" if system == "ios" else f"iPad; CPU OS {ios} like Mac OS X"
        )
        if brand == "chrome":
            return (
                f"Mozilla/5.0 ({platform}) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/{version} "
                "Mobile/15E148 Safari/604.1"
            )
        if brand == "firefox":
            return (
                f"Mozilla/5.0 ({platform}) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/{version} "
                "Mobile/15E148 Safari/605.1.15"
            )
        safari = version if brand == "safari" else "17.0"
        return (
            f"Mozilla/5.0 ({platform}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{safari} "
            "Mobile/15E148 Safari/604.1"
        )
    if system == "android":
        platform = f"Linux; Android {osv or '14'}" + ("; K" if mobile else "")
        if brand == "firefox":
            form = "Mobile" if mobile else "Tablet"
            return f"Mozilla/5.0 (Android {osv or '14'}; {form}; rv:{version}) Gecko/{version} Firefox/{version}"
        tail = "Mobile Safari/537.36" if mobile else "Safari/537.36"
        if brand == "samsung":
            return (
                f"Mozilla/5.0 ({platform}) AppleWebKit/537.36 (KHTML, like Gecko) "
                f"SamsungBrowser/{version} Chrome/120.0.0.0 {tail}"
            )
        return f"Mozilla/5.0 ({platform}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{version} {tail}"
    platform = {
        "windows": "Windows NT 10.0; Win64; x64",
        "macos": "Macintosh; Intel Mac OS X 10_15_7",
        "linux": "X11; Linux x86_64",
        "chromeos": "X11; CrOS x86_64 14541.0.0",
    }[system]
    if brand == "firefox":
        return f"Mozilla/5.0 ({platform}; rv:{version}) Gecko/20100101 Firefox/{version}"
    if brand == "safari" and system == "macos":
        return f"Mozilla/5.0 ({platform}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{version} Safari/605.1.15"
    chrome = f"Mozilla/5.0 ({platform}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{{}} Safari/537.36"
    if brand == "edge":
        return chrome.format("120.0.0.0") + f" Edg/{version}"
    if brand == "opera":
        return chrome.format("120.0.0.0") + f" OPR/{version}"
    return chrome.format(version if brand == "chrome" else "120.0.0.0")
