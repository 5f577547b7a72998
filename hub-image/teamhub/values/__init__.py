"""Reading, checking and editing values files (the first step of the flow)."""
