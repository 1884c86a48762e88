"""``crm demo``: a workspace with a synthetic shop that runs the whole loop, identify to evaluate."""
