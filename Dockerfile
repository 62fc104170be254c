# tickroom game server node.
#   docker build -t tickroom .
#   docker run -p 7350:7350 tickroom
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY simulation ./simulation
COPY server ./server
COPY client ./client
COPY loadtest ./loadtest
# tickroom/: the public API and a link to each folder above (pyproject.toml).
COPY tickroom ./tickroom
RUN pip install . \
    && groupadd --system --gid 10001 tickroom \
    && useradd --system --uid 10001 --gid 10001 --no-create-home tickroom

# Numeric, so Kubernetes' runAsNonRoot can check it (a name cannot be) and
# the id resolves the same on the host (hadolint DL3066).
USER 10001:10001
# 7350: WebSocket game port. 7351: control API (matchmaker, /healthz, /metrics).
EXPOSE 7350 7351
# Without an API key the control API listens on loopback only; give it
# TICKROOM_API_KEY (or TICKROOM_API_KEY_FILE, a mounted secret) and it listens
# on TICKROOM_HOST like the game port.
ENV TICKROOM_HOST=0.0.0.0 TICKROOM_PORT=7350 TICKROOM_CONTROL_PORT=7351

# Healthy: the control API answers /healthz (it listens on loopback at least).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('TICKROOM_CONTROL_PORT', '7351'), timeout=2).close()"]

# SIGTERM starts the graceful stop: rooms close their clients with 1001.
STOPSIGNAL SIGTERM
ENTRYPOINT ["tickroom"]
CMD ["serve"]
