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
