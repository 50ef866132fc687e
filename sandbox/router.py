def is_sandbox_label(app_label: str) -> bool:
    return app_label == "sandbox" or app_label.startswith("sandbox_")


class SandboxRouter:
    """Keep the emulated remote services in their own database.

    The sandbox plays another company's servers, so its writes must not live or
    die with the product's transaction; a separate connection guarantees that.
    """

    def db_for_read(self, model, **hints):
        return "sandbox" if is_sandbox_label(model._meta.app_label) else None

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        a = is_sandbox_label(obj1._meta.app_label)
        b = is_sandbox_label(obj2._meta.app_label)
        return None if a == b else False

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if is_sandbox_label(app_label):
            return db == "sandbox"
        return db == "default"
