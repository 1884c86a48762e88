"""What every report shares: periods, PNG charts, HTML helpers, files written whole, safe cells."""
