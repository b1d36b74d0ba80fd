from setuptools import find_packages, setup

with open("requirements.txt") as requirements:
    install_requires = [line.strip() for line in requirements if line.strip()[:1] not in ("", "#")]

setup(
    name="pulp-container",
    version="3.0.0.dev0",
    description="A Pulp plugin that makes Pulp an OCI container registry with cross-repository mount",
    license="GPLv2+",
    python_requires=">=3.11",
    # Only the plugin: tests, benchmarks and the harness they share stay in the repository.
    packages=find_packages(include=["pulp_container", "pulp_container.*"]),
    include_package_data=True,
    install_requires=install_requires,
    entry_points={"pulpcore.plugin": ["pulp_container = pulp_container:default_app_config"]},
)
