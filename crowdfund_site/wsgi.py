"""
WSGI config for crowdfund_site project.

It exposes the WSGI callable as a module-level variable named ``application``.

For more information on this file, see
https://docs.djangoproject.com/en/5.2/howto/deployment/wsgi/
"""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crowdfund_site.settings")

application = get_wsgi_application()

# Every module, model, URL pattern and view is loaded now and lives as long as the process: the
# collector's full passes would walk those objects again and again, between requests' own
# garbage, for nothing. Freezing them leaves the collector only what requests create.
get_resolver().url_patterns  # noqa: B018 - imports the URLconf and every view module now
gc.freeze()
