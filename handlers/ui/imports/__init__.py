"""The import wizard: choose an importer, upload a file or give a URL, watch it prepare,
pick users and channels, watch the import, read its summary. Admins only: each view
asks for the permission the import API requires."""

from handlers.ui.imports import pages, picker, upload

ROUTES = [*pages.ROUTES, *picker.ROUTES, *upload.ROUTES]
