# The service's image: the `remediator` command on Python 3.11.
# EXTRAS="[sandbox]" adds moto, which `remediator sandbox` needs (docker-compose.yml builds it so).
FROM python:3.11-slim

ARG EXTRAS=""
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY agent agent
COPY tools tools
COPY runbooks runbooks
COPY audit audit
COPY sandbox sandbox
RUN pip install ".${EXTRAS}"

# Not root; var/ is where a SQLite file or the sandbox's shared files would go.
RUN useradd --create-home --uid 10001 remediator \
    && mkdir -p /app/var/sandbox \
    && chown -R remediator /app/var
USER remediator

EXPOSE 8080
CMD ["remediator", "serve", "--host", "0.0.0.0"]
