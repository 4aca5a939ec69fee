"""The built-in checks (registered on import) and the pure-Python reference math they compare against."""
