FROM python:3.11-slim-bookworm
WORKDIR /srv/caunoi
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY server server
COPY media media
COPY clinics clinics
COPY classrooms classrooms
COPY web web
RUN pip install --no-cache-dir . && useradd --system --home /srv/caunoi caunoi && mkdir data && chown caunoi data
USER caunoi
EXPOSE 8080
CMD ["caunoi", "serve"]
