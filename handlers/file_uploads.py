"""Imported files, served as Rocket.Chat serves uploads: to those who may read their room."""

from handlers.context import services
from handlers.files import _file_response as file_response
from handlers.workspace import reader


def get_file_upload(id: str, name: str):
    """GET /file-upload/{id}/{name}"""
    # As in Rocket.Chat, the id finds the file; the name is only there for the reader.
    return file_response(services().attachments.file_for(reader(), id))
