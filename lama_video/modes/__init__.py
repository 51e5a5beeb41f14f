"""Application modes besides video removal: :mod:`.image` (LaMa on still images)."""
