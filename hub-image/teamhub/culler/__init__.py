"""The idle culler's GPU-aware rule (issue 28): what the hub hands the culler (`settings`), how GPU use is read
from Prometheus and judged (`gpu`), and the culler's `cull_arbiter_hook` (`arbiter`, loaded by
`idle_culler_config.py`, the culler's traitlets config file). The hub's own side (warnings on its pages, the
end reason `gpu-idle`) is teamhub/hub/gpuwatch.py, on the same `gpu` module."""
