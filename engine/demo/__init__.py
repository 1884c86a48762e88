"""``crm demo``: a workspace with a synthetic shop that runs the whole loop, identify to evaluate.

* :mod:`~engine.demo.workspace`: the workspace, built in order;
* :mod:`~engine.demo.shop`: synthetic customers and purchases;
* :mod:`~engine.demo.loyalty`, :mod:`~engine.demo.campaigns`, :mod:`~engine.demo.budget`,
  :mod:`~engine.demo.responses`, :mod:`~engine.demo.evaluation`: the demo's day and the weeks after.
"""

from __future__ import annotations

from engine.demo.evaluation import EVALUATED_DAYS, DemoEvaluation
from engine.demo.loyalty import DemoLoyalty
from engine.demo.workspace import ClassShare, DemoResult, run_demo

__all__ = [
    "EVALUATED_DAYS",
    "ClassShare",
    "DemoEvaluation",
    "DemoLoyalty",
    "DemoResult",
    "run_demo",
]
