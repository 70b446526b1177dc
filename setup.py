"""Map the repository's fixed folders into the one ``vendgate`` namespace.

pyproject.toml cannot list packages found below renamed folders, so this file does it: every
package under ``edge/`` is installed as ``vendgate.edge.*``, ``firmware-sim/`` as
``vendgate.boardsim.*``, and so on. No generic top-level name (``cloud``, ``protocol``) is
installed. Everything else about the build lives in pyproject.toml.
"""

from setuptools import find_packages, setup

FOLDERS = {
    "vendgate": "vendgate",
    "vendgate.edge": "edge",
    "vendgate.cloud": "cloud",
    "vendgate.protocol": "protocol",
    "vendgate.boardsim": "firmware-sim",
}


def mapped_packages() -> list[str]:
    packages = []
    for name, folder in FOLDERS.items():
        packages.append(name)
        packages += [f"{name}.{sub}" for sub in find_packages(folder)]
    return packages


setup(packages=mapped_packages(), package_dir=FOLDERS)
