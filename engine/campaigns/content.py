"""Rendering a step's content for one customer: sandboxed, autoescaped, limited, CSS inlined.

Templates live in ``campaigns/templates/`` and run in jinja2's
``SandboxedEnvironment``: no attribute access to internals, no imports. An
email's template is the HTML part and autoescapes every value whatever the
file is called (a customer called ``<script>`` stays text); call scripts,
letters and SMS are text and are not escaped. Subjects are rendered without
HTML escaping, as the header they are, and may not contain line breaks. The
HTML gets its CSS inlined (css-inline) so mail clients that drop ``<style>``
still show it; the text part is made from the HTML when the step gives none.

Every render has limits (:class:`LimitedSandbox`): at most
:data:`MAX_RENDER_SECONDS` of time, :data:`MAX_OUTPUT_CHARACTERS` of output,
:data:`MAX_LOOP_ITEMS` items drawn from ``range`` in all, and repetition
(``"x" * n``) within the output limit. A template past one fails its message
with the reason (:class:`~engine.errors.TemplateRenderError`) instead of
hanging a worker or ``crm preview``.
"""

from __future__ import annotations

import contextvars
import re
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateError
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

#: how long one render may take, how much it may write, how many ``range`` items it may draw
MAX_RENDER_SECONDS = 2.0
MAX_OUTPUT_CHARACTERS = 1_000_000
MAX_LOOP_ITEMS = 100_000


@dataclass
class _Budget:
    deadline: float
    items: int = 0

    def spend(self, items: int = 0) -> None:
        self.items += items
        if self.items > MAX_LOOP_ITEMS:
            raise TemplateRenderError(f"the template draws more than {MAX_LOOP_ITEMS:,} items from range()")
        if time.monotonic() > self.deadline:
            raise TemplateRenderError(f"the template takes longer than {MAX_RENDER_SECONDS:g} s to render")


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("render_budget", default=None)


def _limited_range(*args: int) -> Iterator[int]:
    """``range`` for templates: every item drawn counts against the render's budget."""
    budget = _budget.get()
    for n, item in enumerate(range(*args)):
        if budget is not None and n % 1000 == 0:
            budget.spend(min(1000, len(range(*args)) - n))
        yield item


class LimitedSandbox(SandboxedEnvironment):
    """The sandbox, limiting a render's loops and repetitions (and through :func:`render` time and output)."""

    intercepted_binops = frozenset(["*", "**"])

    def __init__(self, **options: Any) -> None:
        super().__init__(undefined=StrictUndefined, **options)
        self.globals["range"] = _limited_range

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if (
                    isinstance(sequence, str | list | tuple)
                    and isinstance(times, int)
                    and len(sequence) * times > MAX_OUTPUT_CHARACTERS
                ):
                    limit = f"{MAX_OUTPUT_CHARACTERS:,}"
                    raise TemplateRenderError(f"the template repeats a value beyond {limit} characters")
        if operator == "**" and isinstance(right, int) and abs(right) > 1000:
            raise TemplateRenderError(f"the template raises a number to the power {right}: too large")
        return super().call_binop(context, operator, left, right)


def render(template: Template, context: dict[str, Any]) -> str:
    """``template`` for ``context`` within the limits of the module docstring."""
    budget = _Budget(deadline=time.monotonic() + MAX_RENDER_SECONDS)
    token = _budget.set(budget)
    try:
        parts: list[str] = []
        size = 0
        for part in template.generate(context):
            size += len(part)
            if size > MAX_OUTPUT_CHARACTERS:
                raise TemplateRenderError(
                    f"the template writes more than {MAX_OUTPUT_CHARACTERS:,} characters"
                )
            budget.spend()
            parts.append(part)
        return "".join(parts)
    except RecursionError as exc:
        raise TemplateRenderError("the template calls itself too deeply") from exc
    except (TemplateRenderError, TemplateError):
        raise
    except Exception as exc:  # the template's own code failed: 1 / 0, a wrong type, a bad call
        raise TemplateRenderError(f"{_where(template, exc)}{type(exc).__name__}: {exc}") from exc
    finally:
        _budget.reset(token)


def _where(template: Template, exc: BaseException) -> str:
    """``line N: `` of the template where ``exc`` was raised, when the traceback says."""
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if template.filename is not None and frame.f_code.co_filename == template.filename:
            line = lineno
    return f"line {line}: " if line is not None else ""


class ContentRenderer:
    """Renders templates of one campaigns folder; every template and subject is compiled once.

    A worker renders thousands of messages from a handful of templates: the
    compiled subject templates, call scripts and letters are kept, and CSS is
    inlined only for templates that carry styles (a template without
    ``<style>``, a stylesheet link or ``style=`` has nothing to inline).
    """

    def __init__(self, templates: Path) -> None:
        self.templates = templates
        # an email's template is its HTML part: escaped whatever the file is called
        self._files = LimitedSandbox(loader=FileSystemLoader(templates, encoding="utf-8"), autoescape=True)
        self._texts = LimitedSandbox(loader=FileSystemLoader(templates, encoding="utf-8"), autoescape=False)
        self._strings = LimitedSandbox(autoescape=False)
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
        import css_inline

        try:
            rendered_subject = render(self._subject(subject), context)
            html = render(self._files.get_template(template), context)
            styled = self._has_styles(template)
        except TemplateRenderError as exc:
            raise TemplateRenderError(f"{self.templates / template}: {exc}") from exc
        except (TemplateError, OSError, UnicodeError) as exc:
            raise TemplateRenderError(f"{self.templates / template}: {exc}") from exc
        if "\n" in rendered_subject or "\r" in rendered_subject:
            raise TemplateRenderError(f"subject of {template} renders with a line break: refused")
        if styled:
            html = css_inline.inline(html)
        return RenderedEmail(subject=rendered_subject.strip(), html=html, text=html_to_text(html))

    def render_text(self, template: str, context: dict[str, Any]) -> str:
        """A call script or letter for ``context`` (not HTML: no escaping)."""
        try:
            return render(self._texts.get_template(template), context)
        except TemplateRenderError as exc:
            raise TemplateRenderError(f"{self.templates / template}: {exc}") from exc
        except (TemplateError, OSError, UnicodeError) as exc:
            raise TemplateRenderError(f"{self.templates / template}: {exc}") from exc
