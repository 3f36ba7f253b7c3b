# The controller image: `docker build -t rollouts:0.1.0 .`
#
# Stage 1 builds the wheel from the checkout (the examples ride along as package data);
# stage 2 installs that wheel with its runtime dependencies only (no test extras) on a slim
# Python, and runs as a numeric non-root user (the chart's runAsUser), so a read-only root
# filesystem works: nothing is written but /tmp.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --disable-pip-version-check --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 rollouts \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin rollouts
COPY --from=wheel /wheels/ /wheels/
RUN pip install /wheels/rollouts-*.whl && rm -rf /wheels
USER 10001:10001
EXPOSE 8090 8080
ENTRYPOINT ["rollouts"]
CMD ["controller"]
