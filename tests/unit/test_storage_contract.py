"""What the Storage ABC declares for the service: hands_out_urls, url_lifetime, location."""

from __future__ import annotations

from pypicloud.models import Redirect
from pypicloud.storage.memory import MemoryStorage


class Signing(MemoryStorage):
    """A third-party backend that hands out URLs without saying so."""

    def download_url(self, project, filename, expires_in):
        return Redirect(f"https://files.example/{project}/{filename}", None)


class SigningSometimes(Signing):
    hands_out_urls = False


def test_overriding_download_url_declares_urls_unless_the_class_says_otherwise():
    assert MemoryStorage.hands_out_urls is False
    assert Signing.hands_out_urls is True
    assert SigningSometimes.hands_out_urls is False


def test_the_defaults_sign_nothing_and_name_no_place():
    from pypicloud.storage.base import Storage

    storage = Signing()
    assert Storage.url_lifetime(storage) is None
    assert Storage.location(storage) is None
    assert storage.url_lifetime() is None
    assert storage.location() == ("memory", id(storage.store))
