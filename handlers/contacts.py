"""Rocket.Chat's omnichannel contact reads over the imported contacts."""

from handlers.context import services


def search_contacts(searchText: str | None = None, offset: int = 0, count: int = 50):  # noqa: N803 - Rocket.Chat's name
    """GET /api/v1/omnichannel/contacts.search"""
    return {**services().contacts.search(searchText, offset, count), "success": True}


def get_contact(contactId: str):  # noqa: N803 - Rocket.Chat's name
    """GET /api/v1/omnichannel/contacts.get"""
    return {**services().contacts.get(contactId), "success": True}
