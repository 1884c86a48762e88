"""``crm loyalty``: the points ledger from the command line (earn, redeem, refund, balances, audit...).

Every command that changes the ledger takes the idempotency key the POS
would send (``--key``; for a purchase, the order id): running it again with
the same key prints the first result and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import getpass
import sys
from decimal import Decimal

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from engine.cli import loyalty_batch, loyalty_finance
from engine.cli.common import (
    AMOUNT,
    POINTS,
    QUANTITY,
    SIGNED_POINTS,
    console,
    parse_instant,
    print_json,
    state,
)
from engine.config import Config
from engine.errors import ConfigValueError
from engine.loyalty.ledger import (
    Receipt,
    adjust,
    audit,
    balance,
    capture,
    earn_event,
    earn_purchase,
    merge,
    redeem,
    refund,
    statement,
    transfer,
    void,
)
from engine.loyalty.programme import Programme, programme_named
from engine.reporting import csv_writer

loyalty_app = typer.Typer(
    name="loyalty",
    help=(
        "Loyalty programmes: earn and spend points, balances, tiers, expiry, liability.\n\n"
        "Example: crm loyalty balance C-1001"
    ),
    no_args_is_help=True,
)

PROGRAMME = typer.Option(
    None, "--programme", "-p", help="the programme (default: the only one in config.toml)"
)
KEY = typer.Option(
    ..., "--key", "-k", help="idempotency key: the POS transaction id (a retry sends the same)"
)
AS_JSON = typer.Option(False, "--json", help="print as JSON")


def _programme(config: Config, name: str | None) -> Programme:
    return programme_named(config.programmes, name)


def _instant(text: str | None, option: str, programme: Programme) -> dt.datetime | None:
    """An optional day or time, read in the programme's zone."""
    return parse_instant(text, programme.zone, option) if text is not None else None


#: what the points of a receipt did, for commands that do not add them to the account
_MOVED = {
    "redeem": "spent",
    "hold": "held",
    "capture": "spent (the hold captured)",
    "void": "released (the hold voided)",
    "transfer": "given",
    "merge": "moved into the surviving account",
}


def receipt_line(receipt: Receipt) -> str:
    """One line for a receipt: points earned or adjusted carry their sign, spent points say so."""
    moved = _MOVED.get(receipt.command)
    points = f"{receipt.points:,} points {moved}" if moved else f"{receipt.points:+,} points"
    return f"{receipt.command} {receipt.key}: {points} for {receipt.customer}"


def _print_receipt(receipt: Receipt, as_json: bool) -> None:
    if as_json:
        print_json(receipt)
        return
    replay = " [dim](replayed: nothing changed)[/]" if receipt.replayed else ""
    console.print(escape(receipt_line(receipt)) + replay)
    console.print(
        f"available {receipt.available:,}  pending {receipt.pending:,}  held {receipt.held:,}"
        + (f"  debt {receipt.debt:,}" if receipt.debt else "")
    )
    extra = {k: v for k, v in receipt.detail.items() if k not in ("rules", "lots", "config_version") and v}
    if extra:
        console.print(", ".join(f"{k}: {v}" for k, v in extra.items()), soft_wrap=True)


def earn(
    customer: str = typer.Argument(..., help="the customer's external id"),
    order: str | None = typer.Option(None, "--order", help="the order id (its idempotency key)"),
    amount: Decimal | None = typer.Option(
        None, "--amount", parser=AMOUNT, help="what the customer paid (0.01 .. 100,000,000)"
    ),
    category: str | None = typer.Option(None, "--category"),
    sku: str | None = typer.Option(None, "--sku"),
    quantity: Decimal = typer.Option(Decimal(1), "--quantity", parser=QUANTITY, help="0.001 .. 1,000,000"),
    source: str | None = typer.Option(None, "--source", help="shop, web... or a partner's name"),
    at: str | None = typer.Option(None, "--at", help="when it was bought (default: now)"),
    event: str | None = typer.Option(
        None, "--event", help="an event instead of a purchase: birthday, referral..."
    ),
    key: str | None = typer.Option(None, "--key", "-k", help="idempotency key of an event"),
    programme: str | None = PROGRAMME,
    as_json: bool = AS_JSON,
) -> None:
    """Give points for a purchase (by the earn rules) or for an event.

    Example: crm loyalty earn C-1001 --order POS-2027-000123 --amount 2400 --category cosmetics
    Example: crm loyalty earn C-1001 --event referral --key referral-C-1001-C-2002
    """
    config = state.config()
    chosen = _programme(config, programme)
    engine = state.engine(config)
    if event is not None:
        if key is None or order is not None or amount is not None:
            raise ConfigValueError("--event", "--event", "an event needs --key and no --order or --amount")
        receipt = earn_event(engine, chosen, key=key, customer=customer, event=event)
    else:
        if order is None or amount is None:
            raise ConfigValueError(
                "--order", "--order", "a purchase needs --order and --amount (or give --event)"
            )
        receipt = earn_purchase(
            engine,
            chosen,
            order=order,
            customer=customer,
            amount=amount,
            ordered_at=_instant(at, "--at", chosen),
            category=category,
            sku=sku,
            quantity=quantity,
            source=source,
        )
    _print_receipt(receipt, as_json)


def redeem_command(
    customer: str | None = typer.Argument(
        None, help="the customer's external id (not with --capture/--void)"
    ),
    key: str = KEY,
    points: int | None = typer.Option(
        None, "--points", parser=POINTS, help="points to spend (1 .. 10,000,000)"
    ),
    reward: str | None = typer.Option(None, "--reward", help="a reward of the programme instead of --points"),
    order: str | None = typer.Option(
        None, "--order", help="the order the points pay for (refunds give them back)"
    ),
    order_amount: Decimal | None = typer.Option(
        None, "--order-amount", parser=AMOUNT, help="that order's amount"
    ),
    partner: str | None = typer.Option(None, "--partner", help="the partner where the points are burnt"),
    hold: bool = typer.Option(False, "--hold", help="only reserve the points: capture or void them later"),
    capture_hold: str | None = typer.Option(
        None, "--capture", help="spend the points of this hold (its key)"
    ),
    void_hold: str | None = typer.Option(None, "--void", help="release the points of this hold (its key)"),
    programme: str | None = PROGRAMME,
    as_json: bool = AS_JSON,
) -> None:
    """Spend points for a discount or a reward, at once or in two phases (hold, then capture or void).

    Example: crm loyalty redeem C-1001 --key POS-124 --points 500 --order POS-124 --order-amount 3000
    Example: crm loyalty redeem C-1001 --key H-1 --reward coffee --hold
    Example: crm loyalty redeem --key H-1-capture --capture H-1
    """
    config = state.config()
    chosen = _programme(config, programme)
    engine = state.engine(config)
    if capture_hold is not None or void_hold is not None:
        if customer is not None or points is not None or reward is not None or hold:
            raise ConfigValueError(
                "--capture", "--capture", "--capture/--void take only --key and the hold's key"
            )
        if capture_hold is not None and void_hold is not None:
            raise ConfigValueError("--capture", "--capture", "give --capture or --void, not both")
        if capture_hold is not None:
            receipt = capture(engine, chosen, key=key, hold_key=capture_hold)
        else:
            receipt = void(engine, chosen, key=key, hold_key=void_hold or "")
    else:
        if customer is None:
            raise ConfigValueError("CUSTOMER", "CUSTOMER", "say whose points to spend")
        receipt = redeem(
            engine,
            chosen,
            key=key,
            customer=customer,
            points=points,
            reward=reward,
            order=order,
            order_amount=order_amount,
            partner=partner,
            hold=hold,
        )
    _print_receipt(receipt, as_json)


def refund_command(
    order: str = typer.Argument(..., help="the order being refunded"),
    key: str = KEY,
    amount: Decimal | None = typer.Option(
        None, "--amount", parser=AMOUNT, help="money refunded (default: the rest of the order)"
    ),
    programme: str | None = PROGRAMME,
    as_json: bool = AS_JSON,
) -> None:
    """Refund an order, fully or partly: its earned points go back pro rata, spent points come back.

    Example: crm loyalty refund POS-2027-000123 --key RET-77 --amount 1200
    """
    config = state.config()
    chosen = _programme(config, programme)
    _print_receipt(refund(state.engine(config), chosen, key=key, order=order, amount=amount), as_json)


def adjust_command(
    customer: str = typer.Argument(..., help="the customer's external id"),
    points: int = typer.Option(
        ...,
        "--points",
        parser=SIGNED_POINTS,
        help="points to add (positive) or take (negative), up to 10,000,000",
    ),
    key: str = KEY,
    reason: str = typer.Option(..., "--reason", help="why: kept with the entry"),
    actor: str = typer.Option(getpass.getuser(), "--actor", help="who (default: this system user)"),
    expires: str | None = typer.Option(
        None, "--expires", help="when added points expire (default: the policy)"
    ),
    programme: str | None = PROGRAMME,
    as_json: bool = AS_JSON,
) -> None:
    """Correct a balance by hand, with a reason and who did it.

    Example: crm loyalty adjust C-1001 --points 250 --key ADJ-9 --reason "goodwill: late delivery"
    Example: crm loyalty adjust C-1001 --points -100 --key ADJ-10 --reason "double entry at the till"
    """
    config = state.config()
    chosen = _programme(config, programme)
    receipt = adjust(
        state.engine(config),
        chosen,
        key=key,
        customer=customer,
        points=points,
        reason=reason,
        actor=actor,
        expires_at=_instant(expires, "--expires", chosen),
    )
    _print_receipt(receipt, as_json)


def transfer_command(
    source: str = typer.Argument(..., help="the customer giving points"),
    target: str = typer.Argument(..., help="the customer receiving them"),
    points: int = typer.Argument(..., parser=POINTS, help="points to give (1 .. 10,000,000)"),
    key: str = KEY,
    programme: str | None = PROGRAMME,
    as_json: bool = AS_JSON,
) -> None:
    """Give points to another member, with their expiry dates (programmes with transferable = true).

    Example: crm loyalty transfer C-1001 C-2002 300 --key TR-5
    """
    config = state.config()
    chosen = _programme(config, programme)
    _print_receipt(
        transfer(state.engine(config), chosen, key=key, source=source, target=target, points=points), as_json
    )


def merge_command(
    source: str = typer.Argument(..., help="the duplicate customer whose account is merged away"),
    target: str = typer.Argument(..., help="the customer who keeps the account"),
    key: str = KEY,
    actor: str = typer.Option(getpass.getuser(), "--actor", help="who (default: this system user)"),
    programme: str | None = PROGRAMME,
    as_json: bool = AS_JSON,
) -> None:
    """Merge two accounts of one person: lots move with their dates, debts and the higher tier too.

    Example: crm loyalty merge C-1001-dup C-1001 --key MERGE-1
    """
    config = state.config()
    chosen = _programme(config, programme)
    _print_receipt(
        merge(state.engine(config), chosen, key=key, source=source, target=target, actor=actor), as_json
    )


def balance_command(
    customer: str = typer.Argument(..., help="the customer's external id"),
    programme: str | None = PROGRAMME,
    as_json: bool = AS_JSON,
) -> None:
    """A member's points (available, pending, held, debt), tier, discount and lots by expiry.

    Example: crm loyalty balance C-1001
    """
    config = state.config()
    chosen = _programme(config, programme)
    result = balance(state.engine(config), chosen, customer)
    if as_json:
        print_json(result)
        return
    zone = chosen.zone
    console.print(
        f"[bold]{result.customer}[/] in {result.programme}: {result.available:,} available, "
        f"{result.pending:,} pending, {result.held:,} held"
        + (f", [red]{result.debt:,} owed[/]" if result.debt else "")
        + f"; available points worth {result.value:,.2f} {result.currency}"
    )
    if result.merged_into:
        console.print(f"merged into {result.merged_into}")
    tier = result.tier or "-"
    if result.tier_override_until:
        tier += f" (override until {result.tier_override_until.astimezone(zone):%Y-%m-%d})"
    console.print(f"tier {tier}, discount {result.discount_percent}%")
    if result.lots:
        table = Table(box=box.SIMPLE_HEAD, title="lots, spent soonest-expiring first", title_justify="left")
        for column in ("lot", "left", "of", "source", "available", "expires"):
            table.add_column(column, justify="right" if column in ("lot", "left", "of") else "left")
        for lot in result.lots:
            table.add_row(
                str(lot.lot),
                f"{lot.remaining:,}",
                f"{lot.points:,}",
                lot.source + (f" ({lot.partner})" if lot.partner else ""),
                f"{lot.available_at.astimezone(zone):%Y-%m-%d}",
                f"{lot.expires_at.astimezone(zone):%Y-%m-%d}" if lot.expires_at else "never",
            )
        console.print(table)
    for hold in result.open_holds:
        console.print(f"hold {hold['key']}: {hold['points']:,} points until {hold['expires_at']}")


def statement_command(
    customer: str = typer.Argument(..., help="the customer's external id"),
    since: str | None = typer.Option(None, "--since", help="from this date or time (programme zone)"),
    until: str | None = typer.Option(None, "--until", help="before this date or time"),
    output_format: str = typer.Option("table", "--format", help="table, json or csv"),
    programme: str | None = PROGRAMME,
) -> None:
    """Every entry of a member's account, explained: which operation, rule and config version.

    Example: crm loyalty statement C-1001 --since 2027-01-01
    """
    config = state.config()
    chosen = _programme(config, programme)
    if output_format not in ("table", "json", "csv"):
        raise ConfigValueError("--format", "--format", f"unknown format {output_format!r} (table, json, csv)")
    result = statement(
        state.engine(config),
        chosen,
        customer,
        since=_instant(since, "--since", chosen),
        until=_instant(until, "--until", chosen),
    )
    if output_format == "json":
        print_json(result)
        return
    if output_format == "csv":
        writer = csv_writer(sys.stdout)
        writer.writerow(
            [
                "entry",
                "posted_at",
                "key",
                "command",
                "kind",
                "bucket",
                "points",
                "balance",
                "lot",
                "amount",
                "explanation",
                "config_version",
            ]
        )
        for line in result.lines:
            writer.writerow(
                [
                    line.entry,
                    line.posted_at.isoformat(),
                    line.key,
                    line.command,
                    line.kind,
                    line.bucket,
                    line.points,
                    line.balance,
                    line.lot or "",
                    line.amount if line.amount is not None else "",
                    line.explanation,
                    line.config_version,
                ]
            )
        return
    table = Table(
        title=f"{result.customer} in {result.programme}: {result.opening:,} -> {result.closing:,}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for column in ("when", "operation", "kind", "points", "balance", "why"):
        table.add_column(
            column, justify="right" if column in ("points", "balance") else "left", overflow="fold"
        )
    for line in result.lines:
        table.add_row(
            f"{line.posted_at.astimezone(chosen.zone):%Y-%m-%d %H:%M}",
            line.key,
            f"{line.kind} ({line.bucket})",
            f"{line.points:+,}",
            f"{line.balance:,}",
            line.explanation,
        )
    console.print(table)


def audit_command(
    programme: str | None = typer.Option(None, "--programme", "-p", help="only this programme"),
    as_json: bool = AS_JSON,
) -> None:
    """Check every cached balance against its entries and every lot against its allocations.

    Exits 1 and lists the offending accounts when anything disagrees.

    Example: crm loyalty audit
    """
    config = state.config()
    names = [_programme(config, programme).name] if programme else None
    report = audit(state.engine(config), names)
    if as_json:
        print_json({"ok": report.ok, **report.__dict__})
    else:
        console.print(
            f"{report.accounts:,} accounts, {report.lots:,} lots, {report.entries:,} entries checked: "
            + ("[green]consistent[/]" if report.ok else f"[red]{len(report.problems)} problems[/]")
        )
        for problem in report.problems:
            console.print(
                f"{problem.programme} {problem.customer} (account {problem.account}): {problem.what} "
                f"is {problem.cached}, its entries say {problem.entries}"
            )
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``crm loyalty`` and its commands to ``app``."""
    loyalty_app.command("earn")(earn)
    loyalty_app.command("redeem")(redeem_command)
    loyalty_app.command("refund")(refund_command)
    loyalty_app.command("adjust")(adjust_command)
    loyalty_app.command("transfer")(transfer_command)
    loyalty_app.command("merge")(merge_command)
    loyalty_app.command("balance")(balance_command)
    loyalty_app.command("statement")(statement_command)
    loyalty_app.command("audit")(audit_command)
    loyalty_finance.register(loyalty_app)
    loyalty_batch.register(loyalty_app)
    app.add_typer(loyalty_app)
