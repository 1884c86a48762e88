"""What would fail every send is refused when the files are read; a runaway template fails its message.

* every variant's subject and template is checked as a step's is; a subject is one line;
* a template is a UTF-8 file inside campaigns/templates: ``../``, absolute paths, folders refused;
* an email's template is HTML and escapes customer data whatever the file is called;
* a render is limited in time, output, loop items and repetition, and says which limit it hit.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from engine.campaigns import load_campaigns
from engine.campaigns.content import MAX_LOOP_ITEMS, ContentRenderer
from engine.config import load_config
from engine.errors import ConfigErrors, TemplateRenderError
from tests.cli.test_cli import crm
from tests.factories import add_customer

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = """
[[variants]]
name = "a"

[[variants]]
name = "b"
subject = "{subject}"
template = "{template}"
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of the example config and campaigns."""
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    shutil.copytree(ROOT / "campaigns", tmp_path / "campaigns")
    return tmp_path


def _with_variants(workspace: Path, subject: str, template: str) -> Path:
    path = workspace / "campaigns" / "winback.toml"
    text = path.read_text(encoding="utf-8")
    head, steps = text.split("[[steps]]", 1)
    path.write_text(head + VARIANTS.format(subject=subject, template=template) + "\n[[steps]]" + steps)
    return path


def _errors(workspace: Path) -> str:
    with pytest.raises(ConfigErrors) as caught:
        load_campaigns(load_config(workspace / "config.toml"))
    return str(caught.value)


def test_a_variants_subject_and_template_are_checked_like_a_steps(workspace: Path) -> None:
    path = _with_variants(workspace, "{{ customer.first_name ", "missing.html.j2")
    errors = _errors(workspace)
    assert f"{path}" in errors
    assert "variants[1].subject: not a valid template" in errors
    assert "variants[1].template: no file 'missing.html.j2'" in errors


def test_a_subject_is_one_line(workspace: Path) -> None:
    path = workspace / "campaigns" / "winback.toml"
    text = path.read_text(encoding="utf-8")
    subject_line = next(line for line in text.splitlines() if line.startswith("subject = "))
    path.write_text(text.replace(subject_line, 'subject = """Hello\nthere"""'), encoding="utf-8")
    assert "steps[0].subject: a subject is one line" in _errors(workspace)


@pytest.mark.parametrize("name", ["../../config.toml", "/etc/passwd", "..\\\\config.toml", "sub"])
def test_a_template_stays_in_the_templates_folder(workspace: Path, name: str) -> None:
    (workspace / "campaigns" / "templates" / "sub").mkdir()
    path = workspace / "campaigns" / "winback.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('template = "winback.html.j2"', f'template = "{name}"'), encoding="utf-8")
    errors = _errors(workspace)
    assert "steps[0].template:" in errors
    assert "is not a file of" in errors or "is a folder of" in errors


def test_a_template_that_is_not_utf8_is_located(workspace: Path) -> None:
    template = workspace / "campaigns" / "templates" / "winback.html.j2"
    template.write_bytes("<p>Привет, {{ customer.first_name }}</p>".encode("cp1251"))
    path = workspace / "campaigns" / "winback.toml"
    errors = _errors(workspace)
    assert f"{path}:" in errors and "steps[0].template: winback.html.j2 is not UTF-8 text (byte 3)" in errors
    validate = crm("--config", str(workspace / "config.toml"), "validate")
    assert validate.returncode == 1 and "is not UTF-8 text" in validate.stderr
    assert "Traceback" not in validate.stderr


def test_an_emails_template_escapes_customer_data_whatever_it_is_called(tmp_path: Path) -> None:
    (tmp_path / "promo.jinja").write_text("<p>{{ customer.first_name }}</p>", encoding="utf-8")
    (tmp_path / "call.md").write_text("Call {{ customer.first_name }}", encoding="utf-8")
    renderer = ContentRenderer(tmp_path)
    context = {"customer": {"first_name": "<script>alert(1)</script>"}}
    email = renderer.render_email("promo.jinja", "Hi {{ customer.first_name }}", context)
    assert "<script>" not in email.html and "&lt;script&gt;" in email.html
    assert email.subject == "Hi <script>alert(1)</script>"  # a header, not HTML
    assert renderer.render_text("call.md", context) == "Call <script>alert(1)</script>"  # a script is text


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "items from range()",
        ),
        ("{% for i in range(10000000) %}{% endfor %}", "items from range()"),
        ("{{ 'x' * 100000000 }}", "repeats a value beyond"),
        ("{{ 2 ** 100000 }}", "to the power 100000"),
        ("{% for c in big %}{{ big }}{% endfor %}", "writes more than"),
        ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "calls itself too deeply"),
        ("ok\n{{ 1 / 0 }}", "line 2: ZeroDivisionError"),
        ("{{ big + 1 }}", "line 1: TypeError"),
    ],
)
def test_a_runaway_template_fails_with_the_limit_it_hit(tmp_path: Path, body: str, reason: str) -> None:
    (tmp_path / "runaway.html").write_text(body, encoding="utf-8")
    renderer = ContentRenderer(tmp_path)
    started = time.monotonic()
    with pytest.raises(TemplateRenderError, match=reason):
        renderer.render_email("runaway.html", "Hi", {"big": "y" * 10_000})
    assert time.monotonic() - started < 60  # it stopped (the limit is far smaller; no timing asserted)


def test_a_template_within_the_limits_renders(tmp_path: Path) -> None:
    (tmp_path / "fine.html").write_text(
        "{% for i in range(" + str(MAX_LOOP_ITEMS - 10) + ") %}{% endfor %}ok", encoding="utf-8"
    )
    assert ContentRenderer(tmp_path).render_email("fine.html", "Hi", {}).html == "ok"


def test_preview_of_a_runaway_template_is_a_user_error(db, db_url: str, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config_path = write_config()
    shutil.copytree(ROOT / "campaigns", tmp_path / "campaigns")
    with db.begin() as connection:
        add_customer(connection, external_id="C7", first_name="Анна", email="anna@example.ru")
    template = tmp_path / "campaigns" / "templates" / "winback.html.j2"
    template.write_text(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", encoding="utf-8"
    )
    env = {"CRM_CONFIG": str(config_path), "CRM_DATABASE_URL": db_url}
    result = crm("preview", "winback", "--customer", "C7", env=env)
    assert result.returncode == 1, result.stderr
    assert "items from range()" in result.stderr and "Traceback" not in result.stderr
