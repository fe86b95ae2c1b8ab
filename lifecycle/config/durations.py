"""ISO 8601 calendar durations (P2Y, P90D, P1Y6M) as relativedelta."""

from __future__ import annotations

import re

from dateutil.relativedelta import relativedelta

_ISO_DURATION = re.compile(r"^P(?:(?P<y>\d+)Y)?(?:(?P<m>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?$")


def parse_duration(text: str) -> relativedelta:
    match = _ISO_DURATION.match(text or "")
    if not match or text == "P":
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as P2Y, P18M or P90D")
    y, m, w, d = (int(match.group(g) or 0) for g in "ymwd")
    return relativedelta(years=y, months=m, days=d + 7 * w)
