"""The status page (channels_distributed/status/page.html) is one file, shipped in the installed
package, that loads nothing from anywhere: no script, style, image or font from a URL, no CSS
@import, no url() but data:, and no absolute URL in its script but the SVG namespace (a name)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib.resources import files

from channels_distributed.figures import STATUS_OF

PAGE = files("channels_distributed.status").joinpath("page.html").read_text()
SVG_NAMESPACE = "http://www.w3.org/2000/svg"
# Attributes through which a page makes the browser fetch something.
FETCHING = {"src", "href", "srcset", "action", "formaction", "poster", "data", "background",
            "manifest", "xlink:href", "ping"}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fetches: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.inline: list[str] = []
        self._tag = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._tag = tag
        self.fetches.extend((tag, name, value or "") for name, value in attrs
                            if name in FETCHING)

    def handle_data(self, data: str) -> None:
        if self._tag in ("script", "style"):
            self.inline.append(data)


def _parsed() -> _Page:
    page = _Page()
    page.feed(PAGE)
    return page


def test_no_element_fetches_anything() -> None:
    parsed = _parsed()
    assert parsed.fetches == []
    assert "link" not in parsed.tags and "iframe" not in parsed.tags
    assert "script" in parsed.tags and "style" in parsed.tags  # inline, both


def test_the_style_imports_nothing() -> None:
    style = "".join(_parsed().inline)
    assert "@import" not in style
    assert all(url.startswith(("data:", "'data:", '"data:'))
               for url in re.findall(r"url\(\s*([^)]*)\)", style))


def test_the_only_absolute_url_is_the_svg_namespace() -> None:
    urls = re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"')]*", PAGE, re.IGNORECASE)
    assert urls == [SVG_NAMESPACE]


def test_the_page_asks_for_status_json_relatively() -> None:
    # A relative URL: the page works behind a proxy that serves it under a path of its own.
    assert '"status.json"' in PAGE
    assert '"/status.json"' not in PAGE


def test_the_page_counts_as_503_the_causes_the_edge_answers_503_for() -> None:
    (listed,) = re.findall(r"var FIVE_OH_THREE = \[([^\]]*)\]", PAGE)
    causes = {cause.strip().strip('"') for cause in listed.split(",")}
    assert causes == {cause for cause, status in STATUS_OF.items() if status == 503}


def test_the_page_names_a_spread_route_key_as_the_table_does() -> None:
    """The route key's cell carries the route's ``spread`` in the words of the command's table
    (status/render.py): the same texts, after the key."""
    from channels_distributed.status.render import _spread

    assert '["route", key + spreadNote(r.spread)]' in PAGE
    (note,) = re.findall(r"function spreadNote\(counts\) \{(.*?)\n  \}", PAGE, re.S)
    assert '" sub-queues)"' in note and _spread([3]) == " (3 sub-queues)"
    assert '" sub-queues, edges differ)"' in note
    assert _spread([3, 1]) == " (3/1 sub-queues, edges differ)" and 'join("/")' in note
