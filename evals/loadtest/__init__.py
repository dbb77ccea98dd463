"""Load test of the running service (``make loadtest``): locust users, a runner and the report builder."""
