"""docs/metrics.rst lists every metric the package exports, with its type, and nothing else:
read from the registry the pages are rendered from."""

from __future__ import annotations

import re
from pathlib import Path

from channels_distributed.metrics import worker  # noqa: F401  (registers the worker's)
from channels_distributed.metrics.families import PREFIX, REGISTRY

PAGE = Path(__file__).resolve().parents[2] / "docs" / "metrics.rst"
ENTRY = re.compile(r"^``(channels_distributed_\w+)`` \((counter|gauge|histogram)[;)]", re.M)


def test_the_page_lists_every_metric_with_its_type() -> None:
    documented = dict(ENTRY.findall(PAGE.read_text()))
    exported = {(f"{family.name}_total" if family.type == "counter" else family.name):
                family.type for family in REGISTRY.collect()}
    assert all(name.startswith(PREFIX) for name in exported)
    assert documented == exported
