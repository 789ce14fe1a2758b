"""Public matching pages: a pool with its rules, money left and each published round's results."""

from django.http import Http404
from django.shortcuts import render

from .selectors import pool_public_get, pool_rounds_with_results
from .services import pool_balance


def pool_detail(request, slug: str):
    pool = pool_public_get(slug=slug)
    if pool is None:
        raise Http404("No such pool")
    return render(
        request,
        "matching/pool_detail.html",
        {"pool": pool, "left": pool_balance(pool=pool), "rounds": pool_rounds_with_results(pool=pool)},
    )
