"""Apps in the shapes ``--apps`` accepts, for tests/test_app_loader.py."""

from channels.core.app import DEFAULT_APPS
from tests.apps import RaceToTen

INSTANCE = RaceToTen()
REGISTRY = DEFAULT_APPS.with_apps(RaceToTen())
LIST = [RaceToTen()]
NOT_AN_APP = object()
