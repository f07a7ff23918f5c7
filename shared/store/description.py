"""The Markdown of a ``NAME.md`` description section from the HTML an upstream gives (Civitai's model and version
descriptions are its rich-text editor's HTML): converted by markdownify with its defaults, as
ComfyUI-Model-Manager does, so both tools write the same text for the same model."""
from __future__ import annotations

import re

from markdownify import markdownify

#: ``NAME.md``'s sections are the lines starting with ``# `` (our reader and ComfyUI-Model-Manager's split on
#: them), and markdownify writes ``<h1>`` underlined, so such a line can only come from the description's text.
_SECTION_LINE = re.compile(r"^# ", re.MULTILINE)


def html_to_markdown(html: str | None) -> str | None:
    """Markdown for ``html`` (scripts, styles and frames dropped), or None when nothing readable is left."""
    if not html:
        return None
    text = markdownify(html).strip()
    return _SECTION_LINE.sub(r"\\# ", text) or None
