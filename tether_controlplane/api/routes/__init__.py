"""One router per caller: users (deployments, locations, runs), agents, run workers."""
