"""Campaign runs: ``crm plan`` and ``crm run``: a firing becomes a run, its audience outbox rows.

* :mod:`~engine.runs.runner`: a firing into a ``campaign_run``, later steps advanced;
* :mod:`~engine.runs.audience`: who a run is about, by its trigger;
* :mod:`~engine.runs.materialise`: one step of one run into the outbox, every member's state in SQL;
* :mod:`~engine.runs.history`: the runs a campaign has had, with their rows per state (``crm runs``);
* :mod:`~engine.runs.winner`: the A/B winner sent to the customers held for it;
* :mod:`~engine.runs.planner` and :mod:`~engine.runs.plan_diff`: exactly what ``crm run`` would do,
  and what a change to the files does to it.
"""

from __future__ import annotations

from engine.runs.history import RunLine, list_runs
from engine.runs.plan_diff import PlanDiff, plan_diff
from engine.runs.planner import Plan, plan
from engine.runs.runner import RunSummary, StepCounts, advance, expire_run, run_summary, start_run
from engine.runs.winner import send_winner

__all__ = [
    "Plan",
    "PlanDiff",
    "RunLine",
    "RunSummary",
    "StepCounts",
    "advance",
    "expire_run",
    "list_runs",
    "plan",
    "plan_diff",
    "run_summary",
    "send_winner",
    "start_run",
]
