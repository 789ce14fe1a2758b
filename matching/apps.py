from django.apps import AppConfig


class MatchingConfig(AppConfig):
    name = "matching"
    verbose_name = "Matching pools"

    def ready(self):
        # Here, not in promotion: promotion sits below matching and does not import it.
        from promotion.sitemaps import sitemap_section_register

        from .sitemaps import PoolSection

        sitemap_section_register(PoolSection("pools"))
