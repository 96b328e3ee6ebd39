"""The agent's Temporal worker: wires workflows and activities to a Temporal client."""
