"""The Markdown of a ``NAME.md`` description section from the HTML an upstream gives (Civitai's model and version
descriptions are its rich-text editor's HTML): converted by markdownify with its defaults, as
ComfyUI-Model-Manager does, so both tools write the same text for the same model. And the way back for a
browser: a description's Markdown as HTML in which nothing a sidecar holds can run."""
from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdownify import markdownify

from shared.store.front_matter import split_front_matter

#: ``NAME.md``'s sections are the lines starting with ``# `` (our reader and ComfyUI-Model-Manager's split on
#: them), and markdownify writes ``<h1>`` underlined, so such a line can only come from the description's text.
_SECTION_LINE = re.compile(r"^# ", re.MULTILINE)


def html_to_markdown(html: str | None) -> str | None:
    """Markdown for ``html`` (scripts, styles and frames dropped), or None when nothing readable is left."""
    if not html:
        return None
    text = markdownify(html).strip()
    return _SECTION_LINE.sub(r"\\# ", text) or None


#: CommonMark with raw HTML off: a ``<script>``, an ``onerror=`` or an ``<iframe>`` in a sidecar is shown as the
#: text it is, and link targets other than http(s), mailto and relative ones (``javascript:``, ``data:``) are
#: refused by markdown-it's own link check, so the HTML it gives can be put into a page as it is.
_SAFE_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def description_html(text: str | None) -> str | None:
    """The body of a ``NAME.md`` (front matter left out) rendered to HTML safe to insert into the dashboard."""
    if not text:
        return None
    _front, body = split_front_matter(text)
    return _SAFE_MARKDOWN.render(body) if body.strip() else None
