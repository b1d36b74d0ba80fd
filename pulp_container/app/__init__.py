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
        # Imported here: it resolves a URL, and the URL configuration imports every app.
        from pulp_container.app.generic_endpoints import close_generic_versions

        close_generic_versions()
