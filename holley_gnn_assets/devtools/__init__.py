"""Developer tools: local stand-ins for the cloud services (never imported by the pipeline)."""
