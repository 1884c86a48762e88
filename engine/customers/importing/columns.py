"""Header mapping: which column of the file holds which field.

A header matches a field by its canonical name or an alias, case-, space- and
punctuation-insensitively (``E-mail``, ``e_mail`` and ``E mail`` are one key;
``ё`` reads as ``е``). ``column_map`` ({"File header": "field"}) comes first.
Custom attributes come from columns ``attr.NAME`` or ``attr_NAME`` and must be
declared. Unknown columns refuse the file (with a suggestion) unless
``ignore_unknown``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import ImportFileError

_CONSENT_CHANNELS = {
    "email": ("email", "e-mail", "e mail", "эл почта", "электронная почта", "почта email", "имейл"),
    "sms": ("sms", "смс"),
    "call": ("call", "calls", "phone call", "phone calls", "звонки", "звонок", "звонков"),
    "post": ("post", "mail", "letters", "почта", "почтовая рассылка", "письма", "письмо"),
}


def _consent_aliases() -> dict[str, tuple[str, ...]]:
    aliases: dict[str, tuple[str, ...]] = {}
    for channel, words in _CONSENT_CHANNELS.items():
        given: list[str] = []
        at: list[str] = []
        for word in words:
            given += [f"consent {word}", f"{word} consent", f"согласие {word}", f"согласие на {word}"]
            at += [
                f"consent {word} at", f"{word} consent at", f"consent {word} date", f"{word} consent date",
                f"дата согласия {word}", f"дата согласия на {word}", f"согласие {word} дата",
                f"согласие на {word} дата", f"согласие {word} когда",
            ]  # fmt: skip
        aliases[f"consent_{channel}"] = tuple(given)
        aliases[f"consent_{channel}_at"] = tuple(at)
    return aliases


CUSTOMER_FIELDS: dict[str, tuple[str, ...]] = {
    "external_id": (
        "external id", "ext id", "id", "customer id", "client id", "customer code", "client code", "code",
        "ид", "id клиента", "код", "код клиента", "внешний id", "внешний код", "идентификатор",
        "номер клиента",
    ),
    "last_name": ("last name", "lastname", "surname", "family name", "фамилия"),
    "first_name": ("first name", "firstname", "given name", "имя"),
    "middle_name": ("middle name", "middlename", "patronymic", "отчество"),
    "full_name": ("фио", "ф и о", "фамилия имя отчество"),
    "company": (
        "company", "company name", "organization", "organisation", "компания", "организация",
        "название компании", "наименование организации", "юрлицо", "юр лицо",
    ),
    "email": (
        "email", "e mail", "mail", "email address", "e mail address", "эл почта", "электронная почта",
        "адрес электронной почты", "e mail адрес", "email адрес", "емейл", "имейл", "почта",
    ),
    "phone": (
        "phone", "phone number", "telephone", "tel", "mobile", "mobile phone", "cell", "cell phone",
        "телефон", "тел", "номер телефона", "мобильный", "мобильный телефон", "сотовый", "сотовый телефон",
    ),
    "address": ("address", "postal address", "street address", "адрес", "почтовый адрес", "адрес доставки"),
    "city": ("city", "town", "город", "населенный пункт"),
    "country": ("country", "country code", "страна", "код страны"),
    "timezone": ("timezone", "time zone", "tz", "часовой пояс", "таймзона"),
    "birth_date": (
        "birth date", "birthdate", "date of birth", "dob", "birthday", "дата рождения", "день рождения",
        "др",
    ),
    "language": ("language", "lang", "locale", "язык"),
    "curator": (
        "curator", "account manager", "manager", "owner", "куратор", "менеджер", "ответственный",
        "ответственный менеджер", "персональный менеджер",
    ),
    **_consent_aliases(),
    "lifecycle_stage": (
        "lifecycle stage", "lifecycle", "stage", "стадия", "этап", "стадия жизненного цикла",
        "статус клиента",
    ),
    "verified_at": (
        "verified at", "verified", "last verified", "date verified", "дата проверки", "проверено",
        "дата актуализации", "актуализировано",
    ),
}  # fmt: skip

PURCHASE_FIELDS: dict[str, tuple[str, ...]] = {
    "external_id": (
        "external id", "id", "order id", "order", "purchase id", "receipt", "receipt id", "check id",
        "transaction id", "номер заказа", "заказ", "номер чека", "чек", "id заказа", "id покупки",
        "номер покупки", "номер документа",
    ),
    "customer": ("customer", "client", "покупатель", "клиент"),
    "customer_external_id": (
        "customer external id", "customer id", "client id", "id клиента", "код клиента", "номер клиента",
        "код покупателя",
    ),
    "customer_email": ("customer email", "email", "e mail", "эл почта", "электронная почта", "email клиента"),
    "customer_phone": ("customer phone", "phone", "телефон", "телефон клиента", "тел"),
    "ordered_at": (
        "ordered at", "time", "date", "datetime", "order date", "purchase date", "order time", "created",
        "created at", "дата", "дата покупки", "дата заказа", "время", "дата и время", "дата время",
        "дата чека",
    ),
    "amount": ("amount", "sum", "total", "сумма", "сумма покупки", "итого", "стоимость", "сумма заказа"),
    "currency": ("currency", "валюта"),
    "category": ("category", "product category", "категория", "товарная группа", "группа товаров"),
    "sku": ("sku", "article", "item", "product code", "product id", "артикул", "код товара", "товар"),
    "quantity": ("quantity", "qty", "count", "количество", "кол во", "кол"),
    "margin": ("margin", "profit", "gross margin", "маржа", "прибыль", "наценка"),
    "refund_of": (
        "refund of", "return of", "refund for", "refunds", "original order", "возврат", "возврат по",
        "возврат заказа", "возврат чека", "возврат по заказу", "возврат по чеку",
    ),
}  # fmt: skip

_ATTR_HEADER = re.compile(r"^\s*attr[._]\s*(.+?)\s*$", re.IGNORECASE)
_IGNORE = ("", "ignore")


def header_key(text: str) -> str:
    """The comparison key of a header: lower case, ё as е, punctuation and ``_`` as spaces."""
    return " ".join(re.sub(r"[\W_]+", " ", text.lower().replace("ё", "е")).split())


def _alias_index(fields: Mapping[str, Sequence[str]]) -> dict[str, str]:
    index: dict[str, str] = {}
    for name, aliases in fields.items():
        index.setdefault(header_key(name), name)
        for alias in aliases:
            index.setdefault(header_key(alias), name)
    return index


@dataclass
class ColumnMapping:
    """Field name -> column index, attribute name -> column index, and the skipped headers."""

    fields: dict[str, int] = field(default_factory=dict)
    attributes: dict[str, int] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


def header_scorer(fields: Mapping[str, Sequence[str]]) -> Callable[[list[str]], int]:
    """A function counting the header cells that name a known field (to settle the delimiter)."""
    index = _alias_index(fields)

    def score(header: list[str]) -> int:
        return sum(1 for cell in header if header_key(cell) in index or _ATTR_HEADER.match(cell))

    return score


def map_columns(
    path: Path,
    header: list[str],
    fields: Mapping[str, Sequence[str]],
    *,
    column_map: Mapping[str, str],
    ignore_unknown: bool,
    attributes: Mapping[str, str] | None,
) -> ColumnMapping:
    """Map each header cell to a field or attribute; raise ImportFileError for what cannot be mapped.

    ``attributes`` is the declaration of custom attributes (None: the kind has
    none, so ``attr.*`` columns are unknown columns).
    """
    index = _alias_index(fields)
    declared = {name.lower(): name for name in attributes or {}}
    explicit = {header_key(key): value for key, value in column_map.items()}
    mapping = ColumnMapping()
    owner: dict[str, str] = {}
    unknown: list[str] = []
    undeclared: list[str] = []

    def assign(target: str, position: int, title: str) -> None:
        if target in owner:
            raise ImportFileError(
                str(path), f"columns {owner[target]!r} and {title!r} both map to {_display(target)}"
            )
        owner[target] = title
        if target.startswith("attr."):
            mapping.attributes[target[5:]] = position
        else:
            mapping.fields[target] = position

    for position, title in enumerate(header):
        key = header_key(title)
        wanted = column_map.get(title)
        if wanted is None and key:
            wanted = explicit.get(key)
        if wanted is not None:
            if wanted.strip().lower() in _IGNORE:
                mapping.ignored.append(title)
                continue
            attr = _ATTR_HEADER.match(wanted)
            if attr:
                if attributes is None or attr.group(1).lower() not in declared:
                    raise ImportFileError(
                        str(path),
                        f"--map: {title!r} maps to undeclared attribute {attr.group(1)!r} "
                        f"({_declared_text(attributes)})",
                    )
                assign("attr." + declared[attr.group(1).lower()], position, title)
                continue
            target = index.get(header_key(wanted))
            if target is None:
                raise ImportFileError(
                    str(path),
                    f"--map: {title!r} maps to unknown field {wanted!r} (fields: {', '.join(fields)})",
                )
            assign(target, position, title)
            continue
        attr = _ATTR_HEADER.match(title)
        if attr and attributes is not None:
            name = declared.get(attr.group(1).lower())
            if name is None:
                undeclared.append(title)
            else:
                assign("attr." + name, position, title)
            continue
        target = index.get(key)
        if target is None:
            if ignore_unknown:
                mapping.ignored.append(title)
            else:
                unknown.append(title)
            continue
        assign(target, position, title)

    if undeclared:
        raise ImportFileError(
            str(path),
            f"undeclared attribute columns: {', '.join(map(repr, undeclared))} "
            f"({_declared_text(attributes)})",
        )
    if unknown:
        described = []
        for title in unknown:
            if not title:
                described.append(f"column {header.index(title) + 1} (no header)")
                continue
            close = difflib.get_close_matches(header_key(title), list(index), n=1, cutoff=0.75)
            hint = f" (did you mean {index[close[0]]}?)" if close else ""
            described.append(f"{title!r}{hint}")
        raise ImportFileError(
            str(path),
            f"unknown columns: {', '.join(described)}; known fields: {', '.join(fields)}"
            + (", attr.NAME" if attributes is not None else "")
            + "; map them with --map 'Header=field' or pass --ignore-unknown",
        )
    return mapping


def _display(target: str) -> str:
    return f"attribute {target[5:]}" if target.startswith("attr.") else f"field {target}"


def _declared_text(attributes: Mapping[str, str] | None) -> str:
    if not attributes:
        return "no attributes are declared"
    return "declared: " + ", ".join(sorted(attributes))
