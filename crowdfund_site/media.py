"""Uploaded pictures served by the app itself, for development and `make run` only.

Production serves MEDIA_ROOT from the web server or a CDN (README.md, "Pictures"); this view
answers 404 unless SERVE_MEDIA is on. Only the sizes the app encoded itself live there (WebP and
JPEG with names it chose), never an uploaded file as sent.
"""

from django.conf import settings
from django.http import Http404
from django.views.static import serve


def media_serve(request, path: str):
    if not settings.SERVE_MEDIA:
        raise Http404("Media are served by the web server")
    response = serve(request, path, document_root=settings.MEDIA_ROOT)
    # Names are never reused (each picture gets a fresh random part), so a copy never goes stale.
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
