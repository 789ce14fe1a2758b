from django.db import transaction

from .models import User


@transaction.atomic
def user_create(*, username: str, email: str, password: str | None = None, display_name: str = "") -> User:
    """Create and return a user with a hashed password (unusable when none is given)."""
    user = User(username=username, email=email, display_name=display_name)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    return user
