import factory

from accounts.models import User
from accounts.roles import FINANCE, REVIEWERS


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    display_name = factory.LazyAttribute(lambda u: u.username.title())
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class StaffFactory(UserFactory):
    """A platform operator with every permission (a superuser)."""

    is_staff = True
    is_superuser = True


def _join_staff_group(user, group_name: str) -> None:
    """Add ``user`` to a staff group, re-creating the groups if a test flushed them."""
    from django.contrib.auth.models import Group, Permission

    from accounts.roles import staff_groups_sync

    if not Group.objects.filter(name=group_name).exists():
        # Transactional tests flush the database, which removes the groups the migration made.
        staff_groups_sync(group_model=Group, permission_model=Permission)
    user.groups.add(Group.objects.get(name=group_name))


class ReviewerFactory(UserFactory):
    """Staff in the Reviewers group: review decisions and moderation only."""

    is_staff = True

    @factory.post_generation
    def _groups(obj, create, extracted, **kwargs):
        if create:
            _join_staff_group(obj, REVIEWERS)


class FinanceFactory(UserFactory):
    """Staff in the Finance group: refunds, ledger and operations, no review decisions."""

    is_staff = True

    @factory.post_generation
    def _groups(obj, create, extracted, **kwargs):
        if create:
            _join_staff_group(obj, FINANCE)
