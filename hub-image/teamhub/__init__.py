"""teamhub: a config-driven JupyterHub for teams that share GPU clusters.

The packages follow the flow (docs/architecture.md): `values` reads and checks the operator's values files
(keeping file and line of every value), `catalog` builds the typed catalog and answers who may launch what
(`catalog.access`) and where it runs (`catalog.placement`); `hub`, `auth`, `db`, `ops` and `cli` use those two.
"""

__version__ = "0.1.0"
