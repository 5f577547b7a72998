"""The hub: JupyterHub 6 configured from teamhub values (see config.configure)."""
