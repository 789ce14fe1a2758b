import factory

from accounts.models import User


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


class ReviewerFactory(UserFactory):
    """Staff in the Reviewers group: review decisions and moderation only."""

    is_staff = True

    @factory.post_generation
    def _groups(obj, create, extracted, **kwargs):
        if create:
            from django.contrib.auth.models import Group

            from accounts.roles import REVIEWERS

            obj.groups.add(Group.objects.get(name=REVIEWERS))


class FinanceFactory(UserFactory):
    """Staff in the Finance group: refunds, ledger and operations, no review decisions."""

    is_staff = True

    @factory.post_generation
    def _groups(obj, create, extracted, **kwargs):
        if create:
            from django.contrib.auth.models import Group

            from accounts.roles import FINANCE

            obj.groups.add(Group.objects.get(name=FINANCE))
