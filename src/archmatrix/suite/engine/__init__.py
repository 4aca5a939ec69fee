"""The suite's engine: runs each check in a forked child (or a check server) and writes the lane result."""
