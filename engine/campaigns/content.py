"""Rendering a step's content for one customer: sandboxed, autoescaped, CSS inlined.

Templates live in ``campaigns/templates/`` and run in jinja2's
``SandboxedEnvironment``: no attribute access to internals, no imports, and
HTML templates autoescape every value (a customer called
``<script>`` stays text). Subjects are rendered without HTML escaping, as the
header they are, and may not contain line breaks. The HTML gets its CSS
inlined (css-inline) so mail clients that drop ``<style>`` still show it;
the text part is made from the HTML when the step gives none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateError, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from engine.channels import html_to_text
from engine.errors import TemplateRenderError


@dataclass(frozen=True)
class RenderedEmail:
    """The subject, HTML and text of one email."""

    subject: str
    html: str
    text: str


_STYLED = re.compile(r"<style|<link[^>]+stylesheet|\sstyle\s*=", re.IGNORECASE)


class ContentRenderer:
    """Renders templates of one campaigns folder; every template and subject is compiled once.

    A worker renders thousands of messages from a handful of templates: the
    compiled subject templates, call scripts and letters are kept, and CSS is
    inlined only for templates that carry styles (a template without
    ``<style>``, a stylesheet link or ``style=`` has nothing to inline).
    """

    def __init__(self, templates: Path) -> None:
        self.templates = templates
        self._files = SandboxedEnvironment(
            loader=FileSystemLoader(templates),
            autoescape=select_autoescape(["html", "htm", "j2", "xml"], default_for_string=False),
            undefined=StrictUndefined,
        )
        self._texts = SandboxedEnvironment(
            loader=FileSystemLoader(templates), autoescape=False, undefined=StrictUndefined
        )
        self._strings = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
        self._subjects: dict[str, Template] = {}
        self._styled: dict[str, bool] = {}

    def _subject(self, text: str) -> Template:
        compiled = self._subjects.get(text)
        if compiled is None:
            compiled = self._subjects[text] = self._strings.from_string(text)
        return compiled

    def _has_styles(self, template: str) -> bool:
        styled = self._styled.get(template)
        if styled is None:
            source = (self.templates / template).read_text(encoding="utf-8")
            styled = self._styled[template] = bool(_STYLED.search(source))
        return styled

    def render_email(self, template: str, subject: str, context: dict[str, Any]) -> RenderedEmail:
        """Subject, CSS-inlined HTML and text of ``template`` for ``context``."""
        try:
            rendered_subject = self._subject(subject).render(context)
            html = self._files.get_template(template).render(context)
            styled = self._has_styles(template)
        except (TemplateError, OSError) as exc:
            raise TemplateRenderError(f"{self.templates / template}: {exc}") from exc
        if "\n" in rendered_subject or "\r" in rendered_subject:
            raise TemplateRenderError(f"subject of {template} renders with a line break: refused")
        if styled:
            html = css_inline.inline(html)
        return RenderedEmail(subject=rendered_subject.strip(), html=html, text=html_to_text(html))

    def render_text(self, template: str, context: dict[str, Any]) -> str:
        """A call script or letter for ``context`` (not HTML: no escaping)."""
        try:
            return self._texts.get_template(template).render(context)
        except (TemplateError, OSError) as exc:
            raise TemplateRenderError(f"{self.templates / template}: {exc}") from exc
