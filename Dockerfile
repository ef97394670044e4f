# One image for every role of the system: web (daphne), processor, simulator.
# Debian 12: its PostgreSQL client (15) matches docker-compose.yml's server for the nightly backup
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=ops.settings CAMPUSCARD_VAR_DIR=/var/lib/campuscard
WORKDIR /app
COPY pyproject.toml README.md manage.py ./
COPY ops ops
COPY dashboard dashboard
COPY streams streams
COPY readers readers
COPY bench bench
COPY scripts/compile_translations.py scripts/
# The .mo is not committed: compile the .po (polib, at the version pyproject.toml pins) before
# installing, so the installed package carries it.
# LDAP sign-in (the "ldap" extra): python-ldap builds against libldap and libsasl (their -dev
# packages bring the runtime libraries, which must stay).
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev libldap2-dev libsasl2-dev \
        postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir "$(grep -o 'polib==[0-9.]*' pyproject.toml)" \
    && python scripts/compile_translations.py --force \
    && pip install --no-cache-dir ".[ldap]" \
    && mkdir -p /var/lib/campuscard/feed-keys /var/lib/campuscard/media /var/lib/campuscard/backups \
    && useradd --system --home /var/lib/campuscard campuscard \
    && chown -R campuscard /var/lib/campuscard && chmod 700 /var/lib/campuscard/feed-keys
USER campuscard
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "ops.asgi:application"]
