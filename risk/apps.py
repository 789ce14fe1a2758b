from django.apps import AppConfig


class RiskConfig(AppConfig):
    name = "risk"
    verbose_name = "Risk"

    def ready(self) -> None:
        from pledges.followups import pledge_follow_up_register

        from .tasks import pledge_check_follow_up

        # Every pledge held is checked for fraud, in the one message that also sends its receipt.
        pledge_follow_up_register(follow_up=pledge_check_follow_up)
