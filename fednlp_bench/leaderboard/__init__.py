"""Leaderboard: result schema checks (schema), hostile-input limits (safety), official-row checks (official),
aggregation into one table (aggregate), the board (render), submissions (submit).

Import the submodules directly; this package imports nothing heavy on its own.
"""
