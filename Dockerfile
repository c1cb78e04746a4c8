# The image every Django process runs from: web (gunicorn), worker, beat, migrate.
# Stage one builds the project's wheel from the whole source (see .dockerignore);
# stage two installs that wheel alone, collects the static files, and runs as a
# user who cannot write the code.
FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    VAR_DIR=/var/lib/crm \
    STATIC_ROOT=/srv/crm/static \
    LOG_FORMAT=json \
    PROMETHEUS_MULTIPROC_DIR=/var/lib/crm-metrics
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --create-home --home-dir /home/crm --shell /usr/sbin/nologin crm \
    && mkdir -p "$VAR_DIR" "$PROMETHEUS_MULTIPROC_DIR" \
    && chown crm:crm "$VAR_DIR" "$PROMETHEUS_MULTIPROC_DIR"
# Production settings refuse to load without real secrets: collectstatic gets
# throwaway ones, never stored in the image; the real ones come at run time.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    SIMULATOR_WEBHOOK_SECRET="$(python -c 'import secrets; print(secrets.token_urlsafe(32))')" \
    django-admin collectstatic --noinput --verbosity 0
USER crm
WORKDIR /home/crm
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
