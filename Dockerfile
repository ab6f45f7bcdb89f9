# probe-engine's image: `probe-engine serve` on the matrix at /etc/probe-engine/matrix.yaml.
#
#   docker build -t probe-engine .
#   docker build --build-arg BASE=my-registry/python:3.11-slim -t probe-engine .
#
# BASE is any image with Python 3.11+ and its venv module (Debian's python3-venv). Where no
# package index is reachable at build time, put the wheels of probe-engine's dependencies with its
# kubernetes and prometheus extras (serve and in-cluster probing need them; and hatchling, which
# builds it) in wheels/ and add
#   --build-arg PIP_ARGS="--no-index --find-links /src/wheels"
# (tests/test_image.py builds it that way, on a base image made from this machine's Python.)
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
ARG PIP_ARGS=""
COPY . /src
RUN python3 -m venv /opt/probe-engine \
 && /opt/probe-engine/bin/python -m pip install --no-cache-dir --disable-pip-version-check \
      ${PIP_ARGS} "/src[kubernetes,prometheus]" \
 && /opt/probe-engine/bin/probe-engine --version

FROM ${BASE}
COPY --from=build /opt/probe-engine /opt/probe-engine
ENV PATH=/opt/probe-engine/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1
# nobody: serve needs no privilege to probe over TCP, DNS and HTTP.
USER 65534:65534
EXPOSE 9462
ENTRYPOINT ["probe-engine"]
CMD ["serve", "/etc/probe-engine/matrix.yaml", "--listen", "0.0.0.0:9462"]
