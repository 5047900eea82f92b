"""JSON formats: the columnar path (pyarrow.json on a whole block) gives exactly what the
line-by-line path gives, and is used when it can be."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from importer.readers.detect import FORMATS_BY_NAME
from importer.readers.lines import block_lines
from importer.sources import LineBlock

FIXTURES = Path(__file__).parent / "fixtures" / "formats"


def _block(lines: list[str]) -> LineBlock:
    data = ("\n".join(lines) + "\n").encode()
    return LineBlock(data=data, first_line=1, line_count=len(lines))


def _both(fmt_name: str, lines: list[str]):
    parser = FORMATS_BY_NAME[fmt_name].parser("UTC")
    block = _block(lines)
    text_lines, _ = block_lines(block.data)
    fast = parser._parse_columnar(block, text_lines, "f")
    slow = parser._parse_lines(block, text_lines, "f")
    return fast, slow


def _clean(name: str) -> list[str]:
    """The fixture's lines that are plain JSON objects of the format (no prefixes, no broken lines)."""
    out = []
    for line in (FIXTURES / name).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            json.loads(line)
        except ValueError:
            continue
        out.append(line)
    return out


@pytest.mark.parametrize(
    ("fixture", "fmt"), [("traefik.json", "traefik_json"), ("gcp_lb.json", "gcp_lb"), ("caddy.log", "caddy")]
)
def test_columnar_and_line_paths_agree(fixture, fmt):
    fast, slow = _both(fmt, _clean(fixture))
    assert fast is not None, "the columnar path should take these lines"
    assert fast.table.to_pylist() == slow.table.to_pylist()
    assert fast.rows_read == slow.rows_read
    assert [n.reason for n in fast.notices] == [n.reason for n in slow.notices]


def test_cloudflare_times_of_one_type_per_block_take_the_columnar_path():
    lines = [line for line in _clean("cloudflare.json") if isinstance(json.loads(line)["EdgeStartTimestamp"], int)]
    fast, slow = _both("cloudflare", lines)
    assert fast is not None
    assert fast.table.to_pylist() == slow.table.to_pylist()


def test_nginx_json_with_missing_keys_is_rejected_the_same_way():
    good = _clean("nginx.json")[:2]
    odd = json.dumps({"time_iso8601": "2024-03-14T09:27:00+01:00", "remote_addr": "198.51.100.40", "status": "200"})
    fast, slow = _both("nginx_json", [good[0], odd, good[1]])
    assert fast is not None
    assert fast.table.to_pylist() == slow.table.to_pylist()
    assert (
        [(r.line, r.reason) for r in fast.rejected]
        == [(r.line, r.reason) for r in slow.rejected]
        == [(2, "JSON without the keys of the nginx_json format")]
    )


def test_blocks_the_columnar_path_cannot_take_fall_back():
    lines = (FIXTURES / "nginx.json").read_bytes().decode("utf-8", "replace").splitlines()
    fast, _ = _both("nginx_json", lines)  # a broken line and \x escapes: not valid JSON as a block
    assert fast is None


def test_columnar_path_reads_zone_less_times_in_the_given_zone():
    base = {"remote_addr": "198.51.100.50", "request_uri": "/z", "status": "200"}
    lines = [
        json.dumps({"time_iso8601": "2024-03-14T09:26:53", **base}),
        json.dumps({"time_iso8601": "2024-03-14T09:26:54+01:00", **base}),
    ]
    parser = FORMATS_BY_NAME["nginx_json"].parser("Europe/Berlin")
    block = _block(lines)
    batch = parser._parse_columnar(block, block_lines(block.data)[0], "f")
    assert batch is not None
    got = [t.isoformat() for t in batch.table.column("timestamp").to_pylist()]
    assert got == ["2024-03-14T08:26:53+00:00", "2024-03-14T08:26:54+00:00"]
    assert parser.zone_assumed
