"""A store of a year of runs, made in bulk (``fill``), the hot paths that read it
(``paths``), and their query plans (``plans``).

Shared by ``bench/bench_scale.py`` (a million runs, 20 million events: the paths timed, their
plans printed) and ``tests/controlplane/test_query_plans.py`` (a small store, the same paths,
the same check that no plan scans a table that grows with history)."""
