# The bot in webhook mode (or long polling when WEBHOOK_URL is unset). Build: docker build -t privacy-desk .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY locales ./locales
COPY storage ./storage
RUN pip install . \
    && useradd --create-home --uid 10001 bot \
    && mkdir -p /app/data \
    && chown bot:bot /app/data

USER bot
# SQLite's file lives here when DATABASE_URL is not set; mount a volume to keep it.
VOLUME ["/app/data"]
EXPOSE 8080
ENV WEBHOOK_LISTEN=0.0.0.0:8080

# Healthy while the database answers and the outbox is not stuck (webhook mode serves /healthz).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"

CMD ["python", "-m", "bot"]
