"""Email content: sandboxed, autoescaped, CSS inlined, signed unsubscribe links."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.campaigns.content import ContentRenderer
from engine.contact_policy.links import sign, unsubscribe_url, verify
from engine.errors import TemplateRenderError

ROOT = Path(__file__).resolve().parents[2]


def _context(first_name: str) -> dict[str, object]:
    return {
        "customer": {"first_name": first_name},
        "offer_until": "31.12.2026",
        "links": {
            "shop": "https://shop.example/?utm_campaign=winback",
            "unsubscribe": unsubscribe_url("https://crm.shop.example", 42, "winback", "s3cret"),
        },
    }


def test_the_example_template_renders_with_inlined_css_and_text(tmp_path: Path) -> None:
    (tmp_path / "styled.html.j2").write_text(
        "<html><head><style>p { color: red }</style></head>"
        "<body><p>Hi {{ customer.first_name }}</p></body></html>"
    )
    renderer = ContentRenderer(tmp_path)
    email = renderer.render_email("styled.html.j2", "{{ customer.first_name }}, hello", _context("Анна"))
    assert email.subject == "Анна, hello"
    assert '<p style="color: red;">Hi Анна</p>' in email.html and "<style>" not in email.html
    assert email.text.strip() == "Hi Анна"
    example = ContentRenderer(ROOT / "campaigns" / "templates")
    winback = example.render_email(
        "winback.html.j2", "{{ customer.first_name }}, we kept something", _context("Олег")
    )
    assert "Олег," in winback.html and "https://crm.shop.example/u/u.42.winback?s=" in winback.html


def test_customer_data_is_escaped_in_html_but_not_in_the_subject(tmp_path: Path) -> None:
    (tmp_path / "t.html.j2").write_text("<p>{{ customer.first_name }}</p>")
    email = ContentRenderer(tmp_path).render_email(
        "t.html.j2", "{{ customer.first_name }}", _context("<b>Tom & Co</b>")
    )
    assert "<p>&lt;b&gt;Tom &amp; Co&lt;/b&gt;</p>" in email.html
    assert email.subject == "<b>Tom & Co</b>"


def test_sandbox_and_missing_values_are_errors_not_silence(tmp_path: Path) -> None:
    (tmp_path / "evil.html.j2").write_text("{{ customer.__class__.__mro__ }}")
    (tmp_path / "typo.html.j2").write_text("{{ customer.frist_name }}")
    (tmp_path / "plain.html.j2").write_text("<p>ok</p>")
    renderer = ContentRenderer(tmp_path)
    with pytest.raises(TemplateRenderError, match=r"evil\.html\.j2: access to attribute '__class__'"):
        renderer.render_email("evil.html.j2", "x", _context("A"))
    with pytest.raises(TemplateRenderError, match="frist_name"):
        renderer.render_email("typo.html.j2", "x", _context("A"))
    with pytest.raises(TemplateRenderError, match="line break"):
        renderer.render_email("plain.html.j2", "{{ customer.first_name }}", _context("A\nBcc: x"))


def test_signed_links_cannot_be_altered() -> None:
    signature = sign("u.42.winback", "s3cret")
    assert verify("u.42.winback", signature, "s3cret")
    assert not verify("u.43.winback", signature, "s3cret")
    assert not verify("u.42.winback", signature, "other")
    with pytest.raises(ValueError, match="secret"):
        sign("u.42.winback", "")
