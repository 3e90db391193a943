"""Fixtures shared by the import and workspace API tests."""

import pytest

from handlers.app import create_app
from tests.conftest import ADMIN_PASSWORD, log_in, make_config


@pytest.fixture
def importing(tmp_path):
    """An app whose fetches may reach 127.0.0.1, with an import folder, plus a client."""
    import_folder = tmp_path / "import-folder"
    import_folder.mkdir()
    app = create_app(
        make_config(tmp_path / "data", allow_private_networks=True, import_folder=import_folder)
    )
    app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    with app.test_client() as client:
        admin = log_in(client, "admin", ADMIN_PASSWORD)
        yield app, client, admin, import_folder
    app.services.close()
