"""docs/status-page.rst stays true: the metrics it lists are those ``/metrics`` exports, and the
bounds and names it gives are the code's."""

from __future__ import annotations

import math
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from statuses import route, status

from channels_distributed.status.history import FIELDS, MAX_ROUTES, WINDOW, History
from channels_distributed.status.httpd import IDLE_TIMEOUT, MAX_CONNECTIONS, MAX_HEAD
from channels_distributed.status.metrics import RouteCollector, exposition
from channels_distributed.status.serve import MIN_TOKEN, TOKEN_ENV, StatusServer

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "status-page.rst").read_text()
TEXT = " ".join(PAGE.split())  # sentences as one line each, whatever their wrapping


def _documented_metrics() -> set[str]:
    return set(re.findall(r"^``(channels_distributed_\w+)``", PAGE, re.MULTILINE))


def _exported_metrics() -> set[str]:
    history = History()
    latest = status(1.0, {"api": route(requests=1, failures={"busy": 1})})
    history.add(latest)
    export = exposition(RouteCollector(lambda: latest, history.totals, lambda: True))
    assert export is not None
    body, _ = export()
    return {sample.name for family in text_string_to_metric_families(body.decode())
            for sample in family.samples}


def test_the_metrics_table_is_what_metrics_exports() -> None:
    assert _documented_metrics() == _exported_metrics()


def test_the_bounds_given_are_the_codes() -> None:
    server = StatusServer(lambda: None)  # type: ignore[arg-type,return-value]
    samples = math.ceil(WINDOW / server.interval) + 1
    minutes = {5: "five", 10: "ten"}.get(int(WINDOW // 60), f"{WINDOW / 60:g}")
    claims = [
        f"at most {samples} samples for each of at most {MAX_ROUTES} route keys",
        f"over the last {minutes} minutes", f"for {minutes} minutes",
        f"``window_s`` ({WINDOW:g})", f"a read that takes more than {server.timeout:g} s",
        f"idle for {IDLE_TIMEOUT:g} s", f"over {MAX_HEAD // 1024} KiB",
        f"at most {MAX_CONNECTIONS} connections", f"at least {MIN_TOKEN} characters",
        f"``{TOKEN_ENV}``", f'``fields`` (``{list(FIELDS)}``)'.replace("'", '"'),
        f'"interval_s": {server.interval}',
    ]
    missing = [claim for claim in claims if claim not in TEXT]
    assert not missing, f"docs/status-page.rst does not say: {missing}"
