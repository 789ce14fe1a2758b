"""The site's URLs plus the pages benchmark's reference view (see ``pages_reference``)."""

from django.http import Http404, HttpResponse
from django.urls import include, path


def one_row(request, pk: int):
    """Read one campaign row through the ORM and answer its title: the least a database-backed page does."""
    from projects.models import Campaign

    title = Campaign.objects.filter(pk=pk).values_list("title", flat=True).first()
    if title is None:
        raise Http404("No such campaign")
    return HttpResponse(title, content_type="text/plain; charset=utf-8")


urlpatterns = [
    path("bench/row/<int:pk>", one_row, name="bench_one_row"),
    path("", include("crowdfund_site.urls")),
]
