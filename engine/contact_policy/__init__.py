"""Contact policy: who may be contacted, on which channel, and when in their own time."""
