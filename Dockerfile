# zone-publisher: the push-to-publish service (gunicorn + background worker), as a non-root user.
# Build: docker build -t zone-publisher .   Run: see docker-compose.yml (nginx in front, TLS).
# It listens on the container's loopback only: the nginx of docker-compose.yml shares its network
# namespace. Alone, without a proxy, give it a certificate and listen on all interfaces:
#   docker run ... zone-publisher --config /etc/zone-publisher/config.toml --listen 0.0.0.0:8443 \
#     --certificate /etc/zone-publisher/tls/fullchain.pem --key /etc/zone-publisher/tls/privkey.pem
# The install and start steps are the ones CI runs outside a container (tests/test_service_e2e.py
# starts `zone-publisher serve` the same way).
FROM python:3.11-slim

# git: fetching the zone repository; openssh-client: SSH deploy keys; bind9-utils: named-checkzone
# and rndc for the zonefile provider.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client bind9-utils \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /var/lib/zone-publisher publisher

WORKDIR /opt/zone-publisher
COPY pyproject.toml README.md ./
COPY publisher ./publisher
RUN pip install --no-cache-dir --root-user-action=ignore .

USER publisher
WORKDIR /var/lib/zone-publisher
HEALTHCHECK --interval=30s --timeout=5s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8053/healthz', timeout=4)"
ENTRYPOINT ["zone-publisher", "serve"]
CMD ["--config", "/etc/zone-publisher/config.toml", "--listen", "127.0.0.1:8053"]
