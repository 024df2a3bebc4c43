"""Trace replay of real programs (DESIGN.md section 5): per-page access counts recorded from real programs, their
file format, the converters that make them, and the workload that replays them.

    format     the `.pgtrace` file format: `TraceWriter`, `TraceFile`, `TraceFormatError`
    spool      what the converters share: finished epochs spooled to disk, renumbered at the end
    lackey     `convert_lackey`: valgrind lackey's `--trace-mem=yes` log -> .pgtrace
    damo       `convert_damo`: `damo record` output (DAMON) -> .pgtrace
    shipped    the traces shipped in this directory (`sort`, `python-dict`, `sqlite-index`; README.md)
    workload   `TraceWorkload`, the `trace` workload type (`{type: trace, path: sort}`)
    cli        `pagetide trace convert|info`

Import each name from its module; the package itself exports nothing.
"""
