"""What the points are worth to finance: liability, breakage and partner settlement."""
