"""Monitoring: how the serving version does on live traffic (online accuracy and its alarm,
drift checks). It measures and reports what it finds; whether a retrain follows is decided in
``triggers``."""
