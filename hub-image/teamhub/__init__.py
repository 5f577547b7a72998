"""teamhub: a config-driven JupyterHub for teams that share GPU clusters.

The catalog (what can be launched, by whom, for how long) is read from the operator's values by
`values`, checked by `validation`, and queried by `resolution`; the hub, the CLI and the tests all go
through those three modules.
"""

__version__ = "0.1.0"
