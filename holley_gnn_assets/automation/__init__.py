"""Automation: the weekly retrain schedule, the daily scoring sensor and the alert sensors."""
