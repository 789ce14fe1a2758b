from django.apps import AppConfig


class LendingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "lending"
    verbose_name = "Lending"

    def ready(self) -> None:
        from pledges.pledge_checks import (
            pledge_balance_source_register,
            pledge_check_register,
            pledge_guard_register,
        )
        from projects.models import FundingModel

        from .services.investor_limits import lender_limit_check, lender_limit_guard
        from .services.relending import lender_balance_reserve

        # A debt campaign's pledges pass the lender's investor limit; others pay nothing for it.
        pledge_check_register(funding_model=FundingModel.DEBT, check=lender_limit_check)
        # And again under the lender's row lock as the pledge is written, against lends at once.
        pledge_guard_register(funding_model=FundingModel.DEBT, guard=lender_limit_guard)
        # A lender may pay a loan pledge from their balance (re-lend what repayments paid them).
        pledge_balance_source_register(funding_model=FundingModel.DEBT, reserve=lender_balance_reserve)
