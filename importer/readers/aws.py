"""AWS access logs: Application Load Balancer, Classic ELB and S3 server access logs.

CloudFront standard logs are W3C extended files and live in :mod:`importer.readers.w3c`.
All three formats here are space-separated with double-quoted fields; AWS keeps appending
fields at the end, so every pattern tolerates trailing extras.
"""

from __future__ import annotations

from .fields import TextStyle
from .lines import QUOTED, LineFormat

_ISO = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z?"

ALB = LineFormat(
    name="alb",
    description="AWS Application Load Balancer access log (time in UTC, absolute URL in the request, no referrer)",
    example="h2 2024-03-14T08:26:53.512345Z app/my-alb/0a1b2c3d4e5f6071 203.0.113.42:51544 10.0.1.17:8080 "
    '0.001 0.014 0.000 200 200 412 8631 "GET https://www.example.com:443/pricing?plan=pro HTTP/2.0" '
    '"Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0" TLS_AES_128_GCM_SHA256 TLSv1.3 '
    "arn:aws:elasticloadbalancing:eu-central-1:111122223333:targetgroup/web/0f0e0d0c0b0a0908 "
    '"Root=1-65f2b4ad-1a2b3c4d5e6f7a8b9c0d1e2f" "www.example.com" "-" 1 2024-03-14T08:26:53.497000Z '
    '"forward" "-" "-" "10.0.1.17:8080" "200" "-" "-" TID_0123456789abcdef0123456789abcdef',
    pattern=(
        rf"^(?:https?|h2|grpcs|ws|wss) (?P<time_iso>{_ISO}) \S+ (?P<client>\S+) \S+ \S+ \S+ \S+ "
        rf'(?P<status>\d{{3}}|-) \S+ \d+ (?P<bytes>\d+|-) "(?P<request>{QUOTED})" "(?P<user_agent>{QUOTED})"(?: .*)?$'
    ),
    style=TextStyle(backslash=True),
    family="load balancer",
)

ELB = LineFormat(
    name="elb",
    description="AWS Classic Elastic Load Balancer access log (time in UTC; TCP listener lines have no request)",
    example="2024-03-14T08:26:53.945958Z my-classic-elb 203.0.113.42:2817 10.0.0.1:80 0.000086 0.001048 0.001337 "
    '200 200 0 57 "GET https://www.example.com:443/ HTTP/1.1" "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) '
    'Gecko/20100101 Firefox/123.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2',
    pattern=(
        rf"^(?P<time_iso>{_ISO}) \S+ (?P<client>\S+) \S+ \S+ \S+ \S+ (?P<status>\d{{3}}|-) \S+ \d+ "
        rf'(?P<bytes>\d+|-) "(?P<request>{QUOTED})" "(?P<user_agent>{QUOTED})"(?: .*)?$'
    ),
    style=TextStyle(backslash=True),
    family="load balancer",
)

S3 = LineFormat(
    name="s3",
    description="Amazon S3 server access log (times in UTC; the host comes from --domain)",
    example="0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0 example-site-bucket "
    "[14/Mar/2024:08:26:53 +0000] 203.0.113.42 - 3E57427F3EXAMPLE WEBSITE.GET.OBJECT pricing/index.html "
    '"GET /pricing/ HTTP/1.1" 200 - 8312 8312 18 17 "https://www.example.org/" '
    '"Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0" - '
    "SW52ZW50ZWRIb3N0SWRGb3JEb2N1bWVudGF0aW9uT25seTAwMDAwMDAwMA== - - - "
    "example-site-bucket.s3-website.eu-central-1.amazonaws.com - - -",
    pattern=(
        rf"^\S+ \S+ \[(?P<time_clf>[^\]]+)\] (?P<ip>\S+) \S+ \S+ (?P<x_operation>[A-Z]+\.[A-Z_.]+) \S+ "
        rf'"(?P<request>{QUOTED})" (?P<status>\d{{3}}|-) \S+ (?P<bytes>\d+|-) \S+ \S+ \S+ '
        rf'"(?P<referrer>{QUOTED})" "(?P<user_agent>{QUOTED})"(?: .*)?$'
    ),
    style=TextStyle(backslash=True),
    family="object storage",
)

FORMATS = (ALB, ELB, S3)
