"""``{% url %}`` and ``reverse_memo`` answer as Django's ``reverse`` would, whatever they remembered."""

import pytest
from django.template import engines
from django.urls import NoReverseMatch, reverse, set_script_prefix

from crowdfund_site.urls_memo import reverse_memo


def _render(source: str, **context) -> str:
    return engines["django"].from_string(source).render(context)


def test_remembered_urls_are_reverse_s_answers():
    for _ in range(2):  # the second answer comes from the memo
        assert reverse_memo("projects:campaign_detail", "a-b") == reverse("projects:campaign_detail", args=["a-b"])
        assert reverse_memo("projects:home") == reverse("projects:home")
    assert _render("{% url 'pledges:create' slug %}", slug="a-b") == reverse("pledges:create", args=["a-b"])


def test_a_url_remembered_under_one_script_prefix_is_not_given_under_another():
    plain = reverse_memo("projects:home")
    try:
        set_script_prefix("/crowdfund/")
        assert reverse_memo("projects:home") == "/crowdfund" + plain
        assert _render("{% url 'projects:home' %}") == "/crowdfund" + plain
    finally:
        set_script_prefix("/")
    assert reverse_memo("projects:home") == plain


def test_the_tag_keeps_django_s_as_and_errors():
    assert _render("{% url 'no-such-view' as link %}[{{ link }}]") == "[]"
    assert _render("{% url 'projects:home' as link %}[{{ link }}]") == f"[{reverse('projects:home')}]"
    with pytest.raises(NoReverseMatch):
        _render("{% url 'no-such-view' %}")
