"""Chat adapters (console, Slack, Matrix) and the pure renderers of ``Reply`` values."""
