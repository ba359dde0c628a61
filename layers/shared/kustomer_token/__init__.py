"""Sign website visitors into Kustomer chat: the shared package of the token service."""

# The release's version, sent to Kustomer in the User-Agent. The layer ships as source, not as an installed
# distribution, so there is no package metadata to read at run time: pyproject.toml, the template, the
# changelog and the nested example repeat it, and tests/sam/release/test_version.py keeps every place equal to it.
__version__ = "1.0.1"
