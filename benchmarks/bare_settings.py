"""The portal's settings and middleware, with benchmarks.bare_urls as URLs."""

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.bare_urls"
