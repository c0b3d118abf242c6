"""Statistics over benchmark runs: pure computation over run records, no SQL, no HTTP.

records → groups → stats → rankings → curves → tuning → summary / export → gate. The API's summary
route, the dashboard (through that route) and the ``optbench`` client all call these functions, so
they show the same numbers for the same runs.
"""
