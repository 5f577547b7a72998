"""teamhub: a config-driven JupyterHub for teams that share GPU clusters.

The catalog (what can be launched, by whom, for how long) is read from the operator's values files by
`yamlsource` (keeping file and line of every value), checked by `validation`, built into typed objects by
`catalog`, and queried by `resolution`; the hub, the CLI and the tests all go through those modules.
"""

__version__ = "0.1.0"
