# teamhub's JupyterHub configuration: everything comes from the operator's values file
# (TEAMHUB_VALUES, default /etc/teamhub/values.yaml), checked like `teamhub validate`.
# The logic lives in the teamhub package (teamhub/hub/config.py).
from teamhub.hub.config import load_from_environment

load_from_environment(c)  # noqa: F821 - `c` is provided by JupyterHub
