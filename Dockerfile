# syntax=docker/dockerfile:1
# Build: docker build -t ltfu-surveillance .
# Run:   docker run --rm -v ltfu-data:/data ltfu-surveillance demo
#        docker run --rm -v ltfu-data:/data ltfu-surveillance due --site Rome
# PostgreSQL: -e DATABASE_URL=postgresql+psycopg://user:password@host/dbname

FROM python:3.11-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY rules ./rules
COPY surveillance ./surveillance
COPY notifications ./notifications
RUN python -m venv /opt/venv && /opt/venv/bin/pip install . && /opt/venv/bin/python -m compileall -q /opt/venv

FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 999 app \
 && useradd --system --gid 999 --uid 999 --home-dir /data --create-home app
COPY --from=builder /opt/venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    SURVEILLANCE_DATA_DIR=/data
USER app
WORKDIR /data
VOLUME ["/data"]
ENTRYPOINT ["surveillance"]
CMD ["--help"]
