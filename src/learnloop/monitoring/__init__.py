"""Monitoring: metrics now; drift and online performance come here too."""
