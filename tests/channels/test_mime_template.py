"""The fast MIME path: its bytes, read back by the stdlib parser, say what the stdlib builder says."""

from __future__ import annotations

import html
import re
from email import policy
from email.header import decode_header, make_header
from email.parser import BytesParser
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.channels import OutgoingMessage, message_id
from engine.channels.email_message import build_email, html_to_text
from engine.channels.mime_template import MimeTemplate, email_bytes, encode_body
from engine.errors import HeaderInjectionError

SENDER = "Магазин «Ромашка» <news@shop.example>"
HTML = """<!DOCTYPE html>
<html><head><title>Акция</title><style>p { color: #222; } .x > a { color: red }</style></head>
<body>
<table class="wrap"><tr><td style="padding: 24px">
  <p>Анна, здравствуйте!</p>
  <p>Скидка 15 % до 28 февраля &mdash; только для вас &amp; ваших близких.</p>
  <p><a class="button" href="https://shop.example/?utm=winback&amp;c=7">Вернуться в магазин</a></p>
  <ul><li>Крем «Бархат» — 450 ₽</li><li>Шампунь — 390 ₽</li></ul>
  <p style="font-size: 12px"><a href='https://shop.example/u/7.abc'>Отписаться</a><br/>
  ООО «Ромашка», Москва</p>
</td></tr></table>
</body></html>
"""
PARSER = BytesParser(policy=policy.default)


def _message(**fields: object) -> OutgoingMessage:
    values: dict[str, object] = {
        "key": "run5:7:0",
        "customer_id": 7,
        "recipient": "Анна Петрова <anna@mail.example>",
        "subject": "Анна, мы приготовили для вас скидку 15 %",
        "html": HTML,
        "headers": {
            "List-Unsubscribe": "<https://shop.example/u/7.abc>, <mailto:unsubscribe@shop.example?subject=7>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    }
    values.update(fields)
    return OutgoingMessage(**values)  # type: ignore[arg-type]


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n")


def _expected_body(text: str) -> str:
    """What a part's content reads back as: line breaks normalised, a final one added (as the stdlib)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.endswith("\n") else text + "\n"


@pytest.mark.parametrize("eight_bit", [False, True])
def test_the_bytes_read_back_as_the_message(eight_bit: bool) -> None:
    message = _message()
    data = MimeTemplate(sender=SENDER, domain="shop.example").render(message, eight_bit=eight_bit)
    email = PARSER.parsebytes(data)
    assert email["Subject"] == "Анна, мы приготовили для вас скидку 15 %"
    assert email["To"].addresses[0].display_name == "Анна Петрова"
    assert email["To"].addresses[0].addr_spec == "anna@mail.example"
    assert email["From"].addresses[0].display_name == "Магазин «Ромашка»"
    assert email["Message-ID"] == message_id("run5:7:0", "shop.example", installation="")
    assert email["Date"].datetime is not None
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email["List-Unsubscribe"] == message.headers["List-Unsubscribe"]
    assert email.get_content_type() == "multipart/alternative"
    text, page = email.get_body(("plain",)), email.get_body(("html",))
    assert _lf(page.get_content()) == _expected_body(HTML)
    assert _lf(text.get_content()) == html_to_text(HTML)
    assert "Вернуться в магазин (https://shop.example/?utm=winback&c=7)" in text.get_content()
    assert not email.defects and not text.defects and not page.defects
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    if not eight_bit:
        assert data.isascii()
        assert max(len(line) for line in data.split(b"\r\n")) <= 78


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"html": None, "text": "Только текст.\nДо встречи!"},
        {"html": "<p>ascii only</p>", "text": "plain ascii", "subject": "Hello", "recipient": "a@b.example"},
        {"text": "свой текст", "headers": {}},
        {"subject": "", "recipient": '"Doe, John" <john@example.com>'},
        {"installation": "5f0c3e2a9b7d4c1e8a6f2b0d9c7e5a31"},
    ],
)
def test_the_same_email_as_the_stdlib_builder(fields: dict[str, object]) -> None:
    message = _message(**fields)
    fast = PARSER.parsebytes(MimeTemplate(sender=SENDER, domain="shop.example").render(message))
    slow = PARSER.parsebytes(build_email(message, sender=SENDER, domain="shop.example").as_bytes())
    for name in ("From", "To", "Subject", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"):
        # the stdlib folds a long List-Unsubscribe before its first word: it reads back with a space first
        assert fast[name] == (slow[name].lstrip() if slow[name] else slow[name]), name
    assert fast.get_content_type() == slow.get_content_type()
    fast_parts = [(p.get_content_type(), _lf(p.get_content())) for p in fast.walk() if not p.is_multipart()]
    slow_parts = [(p.get_content_type(), _lf(p.get_content())) for p in slow.walk() if not p.is_multipart()]
    assert fast_parts == slow_parts


def test_the_message_id_is_stable_per_installation_and_differs_between_installations() -> None:
    template = MimeTemplate(sender=SENDER, domain="shop.example")
    first, second = "5f0c3e2a9b7d4c1e8a6f2b0d9c7e5a31", "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    ids = [
        PARSER.parsebytes(template.render(_message(installation=i)))["Message-ID"]
        for i in (first, second, first)
    ]
    assert ids[0] == ids[2] == message_id("run5:7:0", "shop.example", installation=first)
    assert ids[1] == message_id("run5:7:0", "shop.example", installation=second) != ids[0]
    assert all(re.fullmatch(r"<[0-9a-f]{32}@shop\.example>", i) for i in ids)


def test_a_long_cyrillic_name_is_split_into_encoded_words_that_decode_exactly() -> None:
    name = "Анна-Мария Петрова-Водкина Александровна"
    template = MimeTemplate(sender=SENDER, domain="shop.example")
    data = template.render(_message(recipient=f"{name} <a@b.example>"))
    raw = BytesParser(policy=policy.compat32).parsebytes(data)["To"]
    assert raw.count("=?utf-8?b?") > 1 and all(len(line) <= 78 for line in raw.splitlines())
    assert str(make_header(decode_header(raw))) == f"{name} <a@b.example>"


def test_email_bytes_reads_back_as_build_email() -> None:
    extra = {"X-Campaign": "winback"}
    fast = PARSER.parsebytes(email_bytes(_message(), sender=SENDER, domain="d.example", extra_headers=extra))
    slow = build_email(_message(), sender=SENDER, domain="d.example", extra_headers=extra)
    assert [fast[h] for h in ("To", "Subject", "Message-ID", "X-Campaign")] == [
        slow[h] for h in ("To", "Subject", "Message-ID", "X-Campaign")
    ]
    with pytest.raises(HeaderInjectionError):
        email_bytes(_message(subject="a\rb"), sender=SENDER, domain="d.example")


def test_each_message_gets_its_own_headers_and_the_skeleton_stays() -> None:
    template = MimeTemplate(sender=SENDER, domain="shop.example", extra_headers={"X-Campaign": "winback"})
    first = PARSER.parsebytes(template.render(_message()))
    second = PARSER.parsebytes(
        template.render(_message(key="run5:8:0", recipient="b@mail.example", subject="Иван", headers={}))
    )
    assert (first["To"], second["To"]) == ("Анна Петрова <anna@mail.example>", "b@mail.example")
    assert second["Subject"] == "Иван" and second["List-Unsubscribe"] is None
    assert first["X-Campaign"] == second["X-Campaign"] == "winback"
    assert first["Message-ID"] != second["Message-ID"]
    assert first.get_boundary() == second.get_boundary()


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "Hi\r\nBcc: everyone@example.com"},
        {"subject": "Hi\nthere"},
        {"recipient": "a@example.ru\r\nBcc: all@example.com"},
        {"recipient": "a@example.ru, b@example.com"},
        {"recipient": "Анна <a@example.ru>, <b@example.com>"},
        {"headers": {"List-Unsubscribe": "<https://x>\r\nBcc: all@example.com"}},
        {"headers": {"X-Evil\r\nBcc": "all@example.com"}},
        {"headers": {"Bcc: x": "y"}},
        {"headers": {"From": "someone@else.example"}},
        {"headers": {"subject": "a second subject"}},
    ],
)
def test_header_injection_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(HeaderInjectionError):
        MimeTemplate(sender=SENDER, domain="shop.example").render(_message(**fields))


def test_line_breaks_in_the_sender_are_refused_at_once() -> None:
    with pytest.raises(HeaderInjectionError):
        MimeTemplate(sender="news@shop.example\r\nBcc: x@y.example", domain="shop.example")


@pytest.mark.parametrize(
    ("text", "eight_bit", "encoding"),
    [
        ("plain ascii\n", False, b"7bit"),
        ("x" * 2000, False, b"quoted-printable"),
        ("<p>" + "a" * 300 + " это </p>", False, b"quoted-printable"),
        ("Только русский текст. " * 20, False, b"base64"),
        ("Только русский текст. " * 20, True, b"8bit"),
        ("Русский " * 200, True, b"base64"),  # one line over 998 bytes
        ("bell \x07 and nul \x00", False, b"quoted-printable"),
    ],
)
def test_the_transfer_encoding_fits_the_text(text: str, eight_bit: bool, encoding: bytes) -> None:
    assert encode_body(text, b"=_b", eight_bit=eight_bit)[0] == encoding


def test_a_body_holding_the_boundary_is_encoded() -> None:
    template = MimeTemplate(sender=SENDER, domain="shop.example")
    sneaky = f"before\n--{template.boundary.decode()}--\nafter\n"
    data = template.render(_message(text=sneaky, html="<p>x</p>"))
    email = PARSER.parsebytes(data)
    assert _lf(email.get_body(("plain",)).get_content()) == sneaky
    assert len(list(email.iter_parts())) == 2


header_text = st.text(st.characters(exclude_characters="\r\n", exclude_categories=("Cs",)), max_size=120)
body_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=3000)


@settings(max_examples=300, deadline=None)
@given(subject=header_text, name=header_text, text=body_text, page=body_text, eight_bit=st.booleans())
def test_any_text_round_trips(subject: str, name: str, text: str, page: str, eight_bit: bool) -> None:
    name = name.strip().replace("<", "").replace(">", "")
    recipient = f"{name} <c@mail.example>" if name else "c@mail.example"
    if len(name) >= 2 and name[0] == name[-1] == '"':  # given quoted: the quotes are not part of the name
        name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    name = " ".join(name.split())
    message = _message(subject=subject, recipient=recipient, text=text, html=page)
    data = MimeTemplate(sender=SENDER, domain="shop.example").render(message, eight_bit=eight_bit)
    email = PARSER.parsebytes(data)
    assert email["Subject"] == subject
    [address] = email["To"].addresses
    assert address.addr_spec == "c@mail.example"
    # the stdlib keeps the folding space between two encoded words of a display name (RFC 2047 drops
    # it, as its own builder's output shows): compare without white space, and exactly below
    assert "".join(address.display_name.split()) == "".join(name.split())
    assert _lf(email.get_body(("plain",)).get_content()) == _expected_body(text)
    assert _lf(email.get_body(("html",)).get_content()) == _expected_body(page)
    if not eight_bit:
        assert data.isascii()


class _ReferenceExtractor(HTMLParser):
    """HTML to text with the stdlib's HTMLParser: the first implementation, kept to check the fast one."""

    _BLOCKS = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "table"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._href: str | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "head"):
            self._skip += 1
        if tag in self._BLOCKS:
            self.parts.append("\n")
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "head"):
            self._skip = max(0, self._skip - 1)
        if tag == "a" and self._href:
            self.parts.append(f" ({self._href})")
            self._href = None
        if tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def reference_html_to_text(document: str) -> str:
    parser = _ReferenceExtractor()
    parser.feed(document)
    parser.close()
    text = html.unescape("".join(parser.parts))
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def test_html_to_text_reads_like_the_parser_on_a_real_email() -> None:
    assert html_to_text(HTML) == reference_html_to_text(HTML)
    assert html_to_text(HTML).startswith("Анна, здравствуйте!\n\nСкидка 15 % до 28 февраля — только для")
    assert "Отписаться (https://shop.example/u/7.abc)\n\nООО «Ромашка», Москва" in html_to_text(HTML)


words = st.text(st.sampled_from("абв xyz10amp\t&;#<>.'\"-"), max_size=12).map(
    lambda s: s.replace("<", "&lt;").replace(">", "&gt;")
)
inline = st.recursive(
    words,
    lambda inner: st.one_of(
        st.tuples(st.sampled_from(["b", "span", "i", "td"]), st.lists(inner, max_size=3)).map(
            lambda t: f"<{t[0]} class='c'>{''.join(t[1])}</{t[0].upper()}>"
        ),
        st.tuples(st.sampled_from(['"https://x.example/?a=1&amp;b=2"', "'/p/1'", '""']), words).map(
            lambda t: f"<a title='a > b' href={t[0]}>{t[1]}</a>"
        ),
        st.just("<br>"),
        st.just("<br/>"),
        st.just("<img src='x.png' alt=\"a > b\"/>"),
        st.just("<!-- a comment <p> -->"),
    ),
    max_leaves=8,
)
block = st.tuples(
    st.sampled_from(["p", "div", "li", "h1", "h4", "tr", "table", "section"]), st.lists(inline, max_size=4)
).map(lambda t: f'<{t[0]} style="margin: 0">{"".join(t[1])}</{t[0]}>\n')
document = st.tuples(
    st.booleans(), st.booleans(), st.lists(block, max_size=6), st.lists(inline, max_size=2)
).map(
    lambda t: (
        ("<head><title>T</title><style>p > a { x: '<p>' }</style></head>" if t[0] else "")
        + ("<script>if (a < b) { '<br>' }</script>" if t[1] else "")
        + "<body>"
        + "".join(t[2])
        + "".join(t[3])
        + "</body>"
    )
)


@settings(max_examples=400, deadline=None)
@given(document)
def test_html_to_text_reads_like_the_parser(document: str) -> None:
    assert html_to_text(document) == reference_html_to_text(document)
