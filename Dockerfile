# A production image: waitress serving the ini mounted at /etc/pypicloud/config.ini.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY pypicloud ./pypicloud
RUN pip install --no-cache-dir '.[postgres]' \
    && useradd --system --home /var/lib/pypicloud --create-home pypicloud
COPY config/production.ini /etc/pypicloud/config.ini

USER pypicloud
VOLUME ["/var/lib/pypicloud"]
EXPOSE 6543
CMD ["pserve", "/etc/pypicloud/config.ini"]
