"""The runtime every service runs: declared subscriptions, the core consume-handle-commit loop, and
the layers around it. Import its public names from `atelier_shared`."""
