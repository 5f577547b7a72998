"""The usage table's name, read by every module that queries it; store.py creates and migrates it, the readers
(daily, ledger, totals, budget) import only this, so no module of usage/ imports one that imports it back."""

TABLE = "teamhub_usage"
