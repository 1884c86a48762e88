"""``crm preview``: one step of one campaign rendered for one real customer, as an HTML file for a browser.

The template context a step sees: ``customer`` (the customer's fields, with
``declared_stage``), ``metrics``, ``custom_metrics``, ``scores``,
``campaign`` (key, name, public_name: what customers see, strategy), ``links`` (shop, signed unsubscribe)
and the campaign's own ``context`` values at the top level.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from engine.campaigns.content import ContentRenderer
from engine.campaigns.definition import step_content
from engine.campaigns.loading import CampaignFile, campaigns_folder, load_campaigns
from engine.config import Config
from engine.contact_policy import unsubscribe_url
from engine.customers import CustomerProfile, customer_profile
from engine.errors import NotFoundError

PREVIEW_SECRET = "preview-only-secret"  # previews are never sent; real links need [links].secret


def template_context(config: Config, campaign: CampaignFile, profile: CustomerProfile) -> dict[str, Any]:
    """What a campaign's templates see for one customer."""
    links = config.settings.links
    customer_id = int(profile.fields["id"])
    return {
        **campaign.campaign.context,
        "customer": profile.fields,
        "metrics": profile.metrics,
        "custom_metrics": profile.custom_metrics,
        "scores": profile.scores,
        "campaign": {
            "key": campaign.key,
            "name": campaign.campaign.name,
            "public_name": campaign.campaign.shown_name,
            "strategy": campaign.campaign.strategy,
        },
        "links": {
            "shop": links.shop_url,
            "unsubscribe": unsubscribe_url(
                links.base_url, customer_id, campaign.key, links.secret or PREVIEW_SECRET
            ),
        },
    }


def preview(
    engine: Engine,
    config: Config,
    campaign_key: str,
    customer: str,
    *,
    step: int = 0,
    out: Path | None = None,
) -> Path:
    """Render ``step`` of ``campaign_key`` for ``customer`` into an HTML file; return its path."""
    campaigns = load_campaigns(config)
    if campaign_key not in campaigns:
        raise NotFoundError("campaign", campaign_key, list(campaigns))
    chosen = campaigns[campaign_key]
    steps = chosen.campaign.steps
    if not 0 <= step < len(steps):
        raise NotFoundError("step", str(step), [str(n) for n in range(len(steps))])
    profile = customer_profile(engine, customer)
    context = template_context(config, chosen, profile)
    renderer = ContentRenderer(campaigns_folder(config) / "templates")
    current = steps[step]
    # the customer's language picks the content, as when it is sent
    content = step_content(chosen.campaign, current, None, profile.fields.get("language"))
    if content.template is not None and current.channel == "email":
        email = renderer.render_email(content.template, content.subject or "", context)
        title = html.escape(email.subject)
        body = f"<p><b>Subject:</b> {title}</p><hr>{email.html}"
    else:
        source = content.script or content.letter or content.template or ""
        title = html.escape(f"{current.channel}: {source}")
        body = f"<pre>{html.escape(renderer.render_text(source, context))}</pre>"
    target = out or config.path.parent / "previews" / f"{campaign_key}-{profile.fields['id']}-step{step}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        f"<!doctype html><meta charset='utf-8'><title>{title}</title>\n{body}\n", encoding="utf-8"
    )
    return target
