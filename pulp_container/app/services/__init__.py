"""Registry services: every query and transaction of the /v2/ API lives here.

Services take parsed values (pulp_container.app.oci) and model instances, never a request, and
raise RegistryError subclasses; views turn their results into responses.
"""
