"""A keyring backend kept in a JSON file ($ADV_KEYRING_FILE), for bench/adversarial.py's leak hunt:
the token really is in 'the keyring', read through keyring's own API, with no desktop keyring on the host."""

import json
import os

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class FileKeyring(KeyringBackend):
    priority = 1

    def _load(self) -> dict:
        try:
            with open(os.environ["ADV_KEYRING_FILE"], encoding="utf-8") as fh:
                return json.load(fh)
        except FileNotFoundError:
            return {}

    def _save(self, data: dict) -> None:
        with open(os.environ["ADV_KEYRING_FILE"], "w", encoding="utf-8") as fh:
            json.dump(data, fh)

    def get_password(self, service, username):
        return self._load().get(f"{service}:{username}")

    def set_password(self, service, username, password):
        data = self._load()
        data[f"{service}:{username}"] = password
        self._save(data)

    def delete_password(self, service, username):
        data = self._load()
        if data.pop(f"{service}:{username}", None) is None:
            raise PasswordDeleteError("not found")
        self._save(data)
