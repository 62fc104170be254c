"""The ``tickroom`` command: ``main`` (flags and environment to a
ServerConfig; ``serve``, ``status``, ``loadtest``), ``workers`` (``--workers
N``: a supervisor of N node processes), ``status`` (the cluster from its
Redis registry)."""
