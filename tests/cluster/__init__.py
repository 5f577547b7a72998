"""The cluster tier: a real control plane (etcd, kube-apiserver, controller manager, scheduler) with kwok
nodes modelling a course cluster; see conftest.py for the fixtures and access.py for what tests use."""
