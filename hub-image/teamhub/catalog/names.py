"""How a server's pod and home volume are named: KubeSpawner's templates (set by hub/config.py) and the prefixes the
chart's admission policy checks (catalog/admission.py), so both sides read one definition."""

# The chart's admission policy lets a pod mount only the home volume named like the pod (teamhub.admission),
# so another person's home cannot be mounted.
POD_NAME_TEMPLATE = "teamhub-{user_server}"
PVC_NAME_TEMPLATE = "home-{user_server}"
