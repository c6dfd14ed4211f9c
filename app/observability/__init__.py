"""What the app tells its operators: log lines, Prometheus metrics and the context of the request being served."""
