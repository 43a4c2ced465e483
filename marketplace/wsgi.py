"""The WSGI entry for production servers: ``gunicorn marketplace.wsgi:app``.

Settings come from the environment only; logging is configured once per worker.
"""

from config import load_settings
from marketplace import create_app
from marketplace.core.observability import configure_logging

settings = load_settings()
configure_logging(settings.log_format, settings.log_level)
app = create_app(settings)
