"""The containers tier: the project's images built for real and run by a real kubelet (see conftest.py)."""
