"""``fedsim sweep``: a grid of scenario overrides x seeds as ordinary runs, run in parallel,
resumable, summarised in one table and one page with the accuracy-energy Pareto front.

``grid`` parses and validates the grid (every cell checked before any run starts),
``execute`` runs the cells as separate ``fedsim run`` processes (each run is byte-identical to
running it alone) and resumes a killed sweep, ``summary`` aggregates seeds per cell and
finds the Pareto front, ``page`` draws it.
"""
