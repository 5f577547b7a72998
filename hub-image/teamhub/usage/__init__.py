"""Usage records (issue 14): every server's life in the hub database, and what is made of them.

- `store`: the table `teamhub_usage` (created and migrated by `teamhub.db.migrate.prepare`, so it is backed up
  and restored with the rest of the hub database), opening, confirming and closing records.
- `record`: the spawner's hooks (start, poll, stop) that write the records; no-ops while the hub's runtime has no store (`Runtime.usage`).
- `totals`: GPU-hours, server-hours, CPU-core-hours, sessions and failed starts for a period, grouped.
- `budget`, `metrics`: team budgets (quota.gpuHours/cpuHours) and the Prometheus metrics.
`teamhub usage` is `teamhub.cli.usage`.
"""
