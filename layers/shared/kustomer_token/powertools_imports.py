"""Powertools modules imported without their packages' other members.

Two Powertools packages import everything they hold from their __init__:
`event_handler` (every resolver: AppSync, AppSync Events, Bedrock Agent, VPC
Lattice... with asyncio) and `utilities.parameters` (the SSM, AppConfig and
DynamoDB providers). Together about 60 ms of a cold start with shipped bytecode
(see benchmarks/), for code the mint never runs. Python always runs a package's
__init__ before its submodules, so `submodule()` registers the package as a
plain namespace first; the submodules then import exactly as Powertools wrote
them (call `skip_package_init` before the import statements). The runtime tests
run every route and the secret read through this.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def skip_package_init(*packages: str) -> None:
    """Lets `from package.module import X` skip `package/__init__.py` (unless already imported)."""
    for package in packages:
        if package in sys.modules:
            continue
        spec = importlib.util.find_spec(package)
        if spec is None or spec.submodule_search_locations is None:
            raise ImportError(f"{package} is not installed")
        namespace = types.ModuleType(package, f"{package} (only the submodules imported)")
        namespace.__path__ = list(spec.submodule_search_locations)
        namespace.__spec__ = spec
        namespace.__package__ = package
        sys.modules[package] = namespace
