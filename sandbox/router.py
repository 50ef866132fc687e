SANDBOX_APP = "sandbox"


class SandboxRouter:
    """Keep the emulated remote services in their own database.

    The sandbox plays another company's servers, so its writes must not live or
    die with the product's transaction; a separate connection guarantees that.
    """

    def db_for_read(self, model, **hints):
        return "sandbox" if model._meta.app_label == SANDBOX_APP else None

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        in_sandbox = {obj1._meta.app_label == SANDBOX_APP, obj2._meta.app_label == SANDBOX_APP}
        return None if len(in_sandbox) == 1 else False

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label == SANDBOX_APP:
            return db == "sandbox"
        return db == "default"
