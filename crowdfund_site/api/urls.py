"""API routes: version 1 from each app's ``api.py``, the OpenAPI schema, and Swagger UI (offline)."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.api import urlpatterns as accounts_api
from fulfilment.api import urlpatterns as fulfilment_api
from lending.api import urlpatterns as lending_api
from matching.api import urlpatterns as matching_api
from pledges.api import urlpatterns as pledges_api
from pledges.api_late import urlpatterns as late_pledges_api
from projects.api import urlpatterns as projects_api
from promotion.api import urlpatterns as promotion_api
from risk.api import urlpatterns as risk_api
from settlement.api import urlpatterns as settlement_api

from .errors import api_not_found

app_name = "api"

urlpatterns = [
    path(
        "v1/",
        include(
            (
                accounts_api
                + projects_api
                + pledges_api
                + late_pledges_api
                + lending_api
                + matching_api
                + promotion_api
                + fulfilment_api
                + settlement_api
                + risk_api,
                "v1",
            )
        ),
    ),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file (?script): no inline script under the CSP.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    # Anything else under /api/ is a JSON 404 in the API's error format, not the HTML page.
    re_path(r"^", api_not_found),
]
