"""The run's configuration: settings (YAML + environment), its schema and validation, time
windows, the run lock, webhook URLs."""
