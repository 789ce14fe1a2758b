"""``{% per_language %}``: fixed text rendered once per language, and never a visitor's data."""

from django.template import Context, Template, engines
from django.template.base import Origin
from django.urls import reverse, set_script_prefix
from django.utils import translation


def _template(source: str, name: str) -> Template:
    engine = engines["django"].engine
    return Template("{% load i18n %}" + source, origin=Origin(name=name), engine=engine)


def test_the_block_is_the_same_text_in_each_language_and_follows_the_language():
    page = _template(
        '{% per_language %}<a href="{% url \'projects:home\' %}">{% translate "Discover" %}</a>{% endper_language %}',
        "tests/per_language_languages.html",
    )
    with translation.override("en"):
        english = [page.render(Context()) for _ in range(2)]
    with translation.override("zh-hans"):
        chinese = page.render(Context())
    assert english == [f'<a href="{reverse("projects:home")}">Discover</a>'] * 2
    assert chinese == f'<a href="{reverse("projects:home")}">发现</a>'


def test_a_variable_inside_renders_as_nothing_even_the_first_time():
    page = _template("[{% per_language %}{{ name }}{% endper_language %}]", "tests/per_language_variables.html")
    with translation.override("en"):
        assert page.render(Context({"name": "Alice"})) == "[]"
        assert page.render(Context({"name": "Bob"})) == "[]"


def test_two_blocks_on_one_line_keep_their_own_text_and_a_script_prefix_its_own_links():
    page = _template(
        '{% per_language %}{% translate "Live" %}{% endper_language %}|'
        "{% per_language %}{% url 'projects:home' %}{% endper_language %}",
        "tests/per_language_places.html",
    )
    with translation.override("en"):
        assert page.render(Context()) == f"Live|{reverse('projects:home')}"
        try:
            set_script_prefix("/crowdfund/")
            assert page.render(Context()) == "Live|/crowdfund/"
        finally:
            set_script_prefix("/")
