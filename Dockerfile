# The service's image: the `remediator` command on Python 3.11.
#   docker build .                   the production image (the product alone: agent, tools,
#                                    runbooks, audit; no emulator, no demo, no eval)
#   docker build --target sandbox .  that image plus the sandbox's emulators and moto, which
#                                    docker-compose.yml runs with `python -m sandbox up`
FROM python:3.11-slim AS product

# MALLOC_ARENA_MAX: glibc gives each thread that allocates an arena of its own, and `serve`'s
# worker loops and probe threads leave memory scattered over them; two arenas kept the reduced
# storm bench's peak at 322 MB instead of 341 MB (the GIL leaves little for them to contend on).
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MALLOC_ARENA_MAX=2

WORKDIR /app
COPY pyproject.toml README.md ./
COPY agent agent
COPY tools tools
COPY runbooks runbooks
COPY audit audit
RUN pip install .

# Not root; var/ is where a SQLite file or the sandbox's shared files would go.
RUN useradd --create-home --uid 10001 remediator \
    && mkdir -p /app/var/sandbox \
    && chown -R remediator /app/var
USER remediator

EXPOSE 8080
CMD ["remediator", "serve", "--host", "0.0.0.0"]

FROM product AS sandbox
USER root
RUN pip install ".[sandbox]"
COPY sandbox sandbox
USER remediator

# Last, so a plain `docker build .` makes it.
FROM product AS production
