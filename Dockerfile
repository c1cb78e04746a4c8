FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY crm ./crm
COPY campaigns ./campaigns
COPY messaging ./messaging
COPY vendors ./vendors
COPY manage.py ./
RUN pip install --no-cache-dir . gunicorn
