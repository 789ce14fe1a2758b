from django.core.management.base import BaseCommand, CommandError

from settlement.verification import ledger_verify


class Command(BaseCommand):
    help = "Check every ledger invariant; exit non-zero naming the offending rows."

    def handle(self, *args, **options):
        problems = ledger_verify()
        if problems:
            for problem in problems:
                self.stderr.write(f"FAIL {problem}")
            raise CommandError(f"{len(problems)} ledger invariant(s) broken.")
        self.stdout.write(self.style.SUCCESS("Ledger OK: every invariant holds."))
