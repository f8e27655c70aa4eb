"""Prints how many days ago (or ahead) each date given on the command line is."""
import sys
from datetime import datetime, timezone

from dateutil import parser, relativedelta


def describe(text: str, now: datetime) -> str:
    then = parser.isoparse(text).replace(tzinfo=timezone.utc)
    delta = relativedelta.relativedelta(now, then)
    return f"{text}: {delta.years}y {delta.months}m {delta.days}d"


if __name__ == "__main__":
    now = datetime.now(timezone.utc)
    for arg in sys.argv[1:] or ["1970-01-01"]:
        print(describe(arg, now))
