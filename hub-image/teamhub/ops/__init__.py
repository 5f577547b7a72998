"""Operator tooling for scripts/: image build plans, helm release history, the prepull awaiter."""
