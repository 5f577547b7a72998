"""The typed catalog: who may launch what (access) and where it runs (placement)."""
