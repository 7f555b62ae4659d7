"""Leaderboard: result schema checks (schema), aggregation into one table (aggregate), the board (render), submissions (submit).

Import the submodules directly; this package imports nothing heavy on its own.
"""
