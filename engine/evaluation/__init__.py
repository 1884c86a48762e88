"""Evaluation: did it pay off? Attribution, campaign results with uplift, programme indicators.

* :mod:`~engine.evaluation.attribution`: which contact (or control assignment) each purchase counts for;
* campaign results: :mod:`~engine.evaluation.campaign_report` (with its SQL,
  :mod:`~engine.evaluation.campaign_figures_sql`, and :mod:`~engine.evaluation.figures`),
  :mod:`~engine.evaluation.uplift` (treated against control), :mod:`~engine.evaluation.ab_test`
  (the A/B/n winner), :mod:`~engine.evaluation.statistics`; shown by
  :mod:`~engine.evaluation.report_output`, :mod:`~engine.evaluation.campaign_charts` and
  :mod:`~engine.evaluation.campaign_page`;
* the programme: :mod:`~engine.evaluation.indicators` (with :mod:`~engine.evaluation.indicators_sql`),
  :mod:`~engine.evaluation.funnel`, :mod:`~engine.evaluation.migration_matrix`; shown by
  :mod:`~engine.evaluation.programme_output`, :mod:`~engine.evaluation.programme_charts` and
  :mod:`~engine.evaluation.overview_page`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.evaluation.ab_test import pick_winner
from engine.evaluation.attribution import AttributionSummary, attribute
from engine.evaluation.campaign_report import campaign_report
from engine.evaluation.figures import CampaignResult, Winner
from engine.evaluation.funnel import Funnel, lifecycle_funnel
from engine.evaluation.indicators import ProgrammeIndicators, programme_indicators
from engine.evaluation.migration_matrix import segment_migration
from engine.lazy import lazy_names

if TYPE_CHECKING:  # pages and workbooks need matplotlib and openpyxl: imported when written
    from engine.evaluation.campaign_page import write_campaign_pages
    from engine.evaluation.overview_page import write_overview
    from engine.evaluation.programme_output import funnel_table, indicator_tables
    from engine.evaluation.report_output import campaign_tables

__getattr__ = lazy_names(
    __name__,
    {
        "write_campaign_pages": "engine.evaluation.campaign_page",
        "write_overview": "engine.evaluation.overview_page",
        "funnel_table": "engine.evaluation.programme_output",
        "indicator_tables": "engine.evaluation.programme_output",
        "campaign_tables": "engine.evaluation.report_output",
    },
)

__all__ = [
    "AttributionSummary",
    "CampaignResult",
    "Funnel",
    "ProgrammeIndicators",
    "Winner",
    "attribute",
    "campaign_report",
    "campaign_tables",
    "funnel_table",
    "indicator_tables",
    "lifecycle_funnel",
    "pick_winner",
    "programme_indicators",
    "segment_migration",
    "write_campaign_pages",
    "write_overview",
]
