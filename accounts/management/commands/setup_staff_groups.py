from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand

from accounts.roles import GROUP_PERMISSIONS, staff_groups_sync


class Command(BaseCommand):
    help = "Create or re-apply the staff groups (Reviewers, Finance) and their permissions."

    def handle(self, *args, **options):
        staff_groups_sync(group_model=Group, permission_model=Permission)
        self.stdout.write(self.style.SUCCESS(f"Staff groups up to date: {', '.join(GROUP_PERMISSIONS)}"))
