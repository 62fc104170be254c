"""Operating a node: ``metrics`` (Prometheus, computed at scrape time),
``load`` (the periodic load line and tick profile), ``logs`` (text or JSON
lines with node and room ids), ``sentry`` (error reports), ``agones`` (the
Agones SDK sidecar). Nothing here runs on the tick path."""
