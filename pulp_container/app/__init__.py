from pulpcore.plugin import PulpPluginAppConfig


class PulpContainerPluginAppConfig(PulpPluginAppConfig):
    """Entry point for the pulp_container plugin: an OCI container registry."""

    name = "pulp_container.app"
    label = "container"
    version = "3.0.0.dev0"
    python_package_name = "pulp-container"
    domain_compatible = False

    def ready(self):
        super().ready()
        from pulp_container.app import generic_endpoints

        generic_endpoints.close_before_first_request()

        from django.conf import settings
        from django.db.models.signals import post_migrate

        from pulp_container.app import middleware
        from pulp_container.app.schedules import configure_schedules

        middleware.install(settings)

        post_migrate.connect(configure_schedules, sender=self, dispatch_uid="container_schedules")
