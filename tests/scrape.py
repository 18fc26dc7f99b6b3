"""Metrics pages read as Prometheus reads them (``prometheus_client.parser``): every sample by
name and labels."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a page in Prometheus' text format; the parser fails on a malformed one."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample ``name`` with exactly ``labels``; a KeyError naming what the page has."""
    key = (name, frozenset(labels.items()))
    if key not in samples:
        near = sorted(str(dict(found)) for n, found in samples if n == name)
        raise KeyError(f"no sample {name} {labels}; the page has {name} with {near}")
    return samples[key]


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}
