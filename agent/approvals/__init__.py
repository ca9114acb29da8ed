"""Human approval of risky actions: requested in Slack, decided once, expiring into a denial."""
