from django.db import transaction

from .models import User


@transaction.atomic
def user_update_profile(*, user: User, full_name: str, time_zone: str) -> User:
    user.full_name = full_name.strip()
    user.time_zone = time_zone
    user.save(update_fields=["full_name", "time_zone"])
    return user
