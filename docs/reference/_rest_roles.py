"""A Griffe extension for the API reference: shows the reST roles of tickwork's docstrings
as inline code.

The docstrings are prose written for both ``help()`` and the site. They name other
objects with Sphinx roles (``:class:`Task```, ``:meth:`~Task.update```), which Markdown
would show as the raw role text. This turns each role into inline code, keeping only the
last part of the name when it starts with ``~`` (as Sphinx does), and turns a paragraph's
closing ``::`` (reST's "a literal block follows") into ``:``. The source files are not
touched. mkdocs.yml loads it (plugins → mkdocstrings → extensions).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|mod|data|exc|obj|const):`(~?)([^`]+)`")
LITERAL_BLOCK_MARKER = re.compile(r"(?<=\S)::$", re.MULTILINE)


def _show(match: re.Match[str]) -> str:
    short, target = match.groups()
    if short:
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def rest_to_markdown(text: str) -> str:
    """The docstring text with roles as inline code and ``::`` markers as ``:``."""
    return LITERAL_BLOCK_MARKER.sub(":", ROLE.sub(_show, text))


class RestRoles(griffe.Extension):
    """Rewrites every docstring once the object tree is complete."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rest_to_markdown(obj.docstring.value)
