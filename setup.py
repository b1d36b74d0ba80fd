from setuptools import find_packages, setup

with open("requirements.txt") as requirements:
    install_requires = [line.strip() for line in requirements if line.strip()]

setup(
    name="pulp-container",
    version="3.0.0.dev0",
    description="A Pulp plugin that makes Pulp an OCI container registry with cross-repository mount",
    license="GPLv2+",
    python_requires=">=3.11",
    packages=find_packages(exclude=["tests", "tests.*", "benchmarks"]),
    include_package_data=True,
    install_requires=install_requires,
    entry_points={"pulpcore.plugin": ["pulp_container = pulp_container:default_app_config"]},
)
