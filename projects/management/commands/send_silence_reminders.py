from django.core.management.base import BaseCommand

from projects.reminders import silence_reminders_create_due, silence_reminders_send_due


class Command(BaseCommand):
    help = "Remind initiators and backers of succeeded campaigns that have gone quiet (no broker needed)."

    def handle(self, *args, **options):
        created = silence_reminders_create_due()
        sent = silence_reminders_send_due()
        self.stdout.write(self.style.SUCCESS(f"{created} reminder(s) fell due; {sent} e-mail(s) sent."))
