"""Operating a node: ``metrics`` (Prometheus, computed at scrape time, with
``failover_metrics`` and ``checkpoint_lag`` under ``--redis-url``),
``load`` (the periodic load line and tick profile), ``logs`` (text or JSON
lines with node and room ids), ``sentry`` (error reports), ``agones`` (the
Agones SDK sidecar). Nothing here runs on the tick path."""
