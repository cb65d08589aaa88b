"""deskbot: policy, routing and orchestration."""
