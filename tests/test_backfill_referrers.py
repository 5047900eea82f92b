"""Source names as Plausible resolves them: the examples of Plausible's own tests
(``source_test.exs``, ``external_controller_test.exs``) over the data it ships."""

from __future__ import annotations

import pytest

from importer.backfill.referrers import resolve

PAGE = "example.com"


@pytest.mark.parametrize(
    ("referrer", "source", "stored"),
    [
        ("https://google.com", "Google", "google.com"),
        ("https://en.m.wikipedia.org", "Wikipedia", "en.m.wikipedia.org"),
        ("https://www.markosaric.com", "markosaric.com", "markosaric.com"),
        ("https://zu.wikipedia.org", "Wikipedia", "zu.wikipedia.org"),
        ("https://notwikipedia.org", "notwikipedia.org", "notwikipedia.org"),
        ("https://cac-excel.officeapps.live.com", "Microsoft 365", "cac-excel.officeapps.live.com"),
        ("https://facebook.com/page/", "Facebook", "facebook.com/page"),
        ("https://example.com", "", ""),
        ("https://www.example.com/pricing", "", ""),
        ("http://localhost:4000/", "", ""),
        ("https://blog.example.com", "blog.example.com", "blog.example.com"),
        ("ftp://wat", "", ""),
        ("android-app://some.android.app", "android-app://some.android.app", "android-app://some.android.app"),
        ("android-app://com.reddit.frontpage", "Reddit", "android-app://com.reddit.frontpage"),
        ("https://mail.google.com", "Gmail", "mail.google.com"),
        ("https://search.yahoo.com", "Yahoo!", "search.yahoo.com"),
        ("https://news.ycombinator.com", "Hacker News", "news.ycombinator.com"),
        ("https://ntp.msn.com", "Bing", "ntp.msn.com"),
        ("https://yandex.com.tr", "Yandex", "yandex.com.tr"),
        ("https://statics.teams.cdn.office.net", "Microsoft Teams", "statics.teams.cdn.office.net"),
        ("https://www.indiehackers.com/page?query=param#hash", "indiehackers.com", "indiehackers.com/page"),
        ("http://m.facebook.com/", "Facebook", "m.facebook.com"),
        # the database's order: a later search entry before an earlier one, search before paid
        ("https://www.google.com/imgres?x=1", "Google Images", "google.com/imgres"),
        ("https://yabs.yandex.ru/count", "Yandex", "yabs.yandex.ru/count"),
        ("https://stackoverflow.com/questions/1", "StackOverflow", "stackoverflow.com/questions/1"),
        # the stored path is kept as written: not decoded, not lower-cased; the host keeps its case
        ("https://Blog.Other.org/Caf%C3%A9/", "Blog.Other.org", "Blog.Other.org/Caf%C3%A9"),
        ("https://127.0.0.1:8080/x", "127.0.0.1", "127.0.0.1/x"),
    ],
)
def test_referrer_sources(referrer: str, source: str, stored: str) -> None:
    got = resolve("", referrer, PAGE)
    assert (got.source, got.referrer, got.utm_source) == (source, stored, "")


@pytest.mark.parametrize(
    ("query", "source", "utm_source"),
    [
        ("utm_source=google", "Google", "google"),
        ("utm_source=GOOGLE", "Google", "GOOGLE"),
        ("utm_source=wikipedia", "Wikipedia", "wikipedia"),
        ("utm_source=ig", "Instagram", "ig"),
        ("ref=betalist", "betalist", "betalist"),
        ("source=betalist", "betalist", "betalist"),
        ("utm_source=facebook", "Facebook", "facebook"),
        ("source=Google-ads", "Google", "Google-ads"),
        ("utm_source=Adwords", "Google", "Adwords"),
        ("utm_source=Newsletter-UK", "Newsletter-UK", "Newsletter-UK"),
        ("ref=producthunt", "producthunt", "producthunt"),
        ("utm_source=t.me", "Telegram", "t.me"),
        # no fuzzy matching: a shorthand we might guess is kept as written
        ("utm_source=hn", "hn", "hn"),
        ("utm_source=google.com", "google.com", "google.com"),
        ("utm_source=facebook.com", "facebook.com", "facebook.com"),
        # the order utm_source, source, ref; a present but empty tag still wins
        ("ref=a&source=b&utm_source=c", "c", "c"),
        ("ref=a&source=b", "b", "b"),
        ("utm_source=&ref=producthunt", "", ""),
    ],
)
def test_tagged_sources(query: str, source: str, utm_source: str) -> None:
    got = resolve(query, None, PAGE)
    assert (got.source, got.utm_source, got.referrer) == (source, utm_source, "")


def test_tag_beats_referrer_which_is_still_stored() -> None:
    got = resolve("utm_source=betalist&utm_medium=web&utm_campaign=launch", "https://betalist.com/my-produxct", PAGE)
    assert got.as_tuple() == ("betalist", "betalist.com/my-produxct", "betalist", "web", "launch", "", "")


def test_click_ids_fill_an_empty_medium() -> None:
    assert resolve("gclid=x", "https://www.google.de/", PAGE).utm_medium == "(gclid)"
    assert resolve("msclkid=x", "https://www.bing.com/search?q=a", PAGE).utm_medium == "(msclkid)"
    assert resolve("gclid=x&utm_medium=cpc", "https://www.google.de/", PAGE).utm_medium == "cpc"
    assert resolve("msclkid=x", "https://www.google.de/", PAGE).utm_medium == ""


@pytest.mark.parametrize(
    ("query", "referrer", "expected"),
    [
        ("", "https://www.google.co.uk/", ("Google", "google.co.uk", "")),
        ("", "https://www.google.com/search?q=x", ("Google", "google.com/search", "")),
        ("", "https://news.ycombinator.com/item?id=1", ("Hacker News", "news.ycombinator.com/item", "")),
        ("", "https://l.facebook.com/l.php?u=x", ("Facebook", "l.facebook.com/l.php", "")),
        ("", "https://en.wikipedia.org/wiki/Log/", ("Wikipedia", "en.wikipedia.org/wiki/Log", "")),
        ("", "https://duckduckgo.com/", ("DuckDuckGo", "duckduckgo.com", "")),
        ("", "https://t.co/abc", ("Twitter", "t.co/abc", "")),
        ("", "https://googlesomething.com/", ("googlesomething.com", "googlesomething.com", "")),
        ("utm_source=fb&utm_medium=social", "", ("Facebook", "", "fb")),
        ("ref=hn", "https://news.ycombinator.com/", ("hn", "news.ycombinator.com", "hn")),
        ("source=Newsletter", "https://www.google.com/", ("Newsletter", "google.com", "Newsletter")),
        ("utm_source=news.ycombinator.com", "", ("news.ycombinator.com", "", "news.ycombinator.com")),
    ],
)
def test_more_sources(query: str, referrer: str, expected: tuple[str, str, str]) -> None:
    got = resolve(query, referrer or None, PAGE)
    assert (got.source, got.referrer, got.utm_source) == expected
