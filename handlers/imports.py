"""Rocket.Chat's import API: thin handlers over ferry.chat.operations.service.ImportService."""

from handlers.base64_upload import streamed_content
from handlers.context import current_user, services
from handlers.responses import json_response

OK = {"success": True}


def upload_import_file(body: dict, file=None):
    """POST /api/v1/uploadImportFile (JSON with base64, or multipart with `file`)"""
    if file is not None:
        content_type = body.get("contentType") or file.content_type or "application/octet-stream"
        services().imports.upload(
            current_user()["_id"],
            file.filename or "import-file",
            content_type,
            body["importerKey"],
            file.file,
            password=body.get("password"),
        )
    else:
        streamed = streamed_content()
        services().imports.upload(
            current_user()["_id"],
            body["fileName"],
            body["contentType"],
            body["importerKey"],
            body["binaryContent"] if streamed is None else streamed,
            base64_stream=streamed is not None,
            password=body.get("password"),
        )
    return OK


def download_public_import_file(body: dict):
    """POST /api/v1/downloadPublicImportFile"""
    services().imports.download_public(
        current_user()["_id"], body["fileUrl"], body["importerKey"], password=body.get("password")
    )
    return OK


def start_import(body: dict):
    """POST /api/v1/startImport"""
    services().imports.start_import(current_user()["_id"], body["input"])
    return OK


def get_import_file_data():
    """GET /api/v1/getImportFileData"""
    return {**services().imports.file_data(), "success": True}


def get_import_progress():
    """GET /api/v1/getImportProgress"""
    return {**services().imports.progress(), "success": True}


def get_latest_import_operations():
    """GET /api/v1/getLatestImportOperations (a bare array, as Rocket.Chat answers)"""
    return json_response(200, services().imports.latest_operations())


def get_current_import_operation():
    """GET /api/v1/getCurrentImportOperation"""
    operation = services().imports.current_operation()
    return {"operation": operation, "success": True} if operation else OK


def download_pending_files(body: dict | None = None):
    """POST /api/v1/downloadPendingFiles"""
    return {
        "count": services().imports.pending.download_pending_files(current_user()["_id"]),
        "success": True,
    }


def download_pending_avatars(body: dict | None = None):
    """POST /api/v1/downloadPendingAvatars"""
    return {
        "count": services().imports.pending.download_pending_avatars(current_user()["_id"]),
        "success": True,
    }


def list_importers():
    """GET /api/v1/importers.list (a bare array)"""
    return json_response(200, services().imports.visible_importers())


def clear_import():
    """POST /api/v1/import.clear"""
    services().imports.clear()
    return OK


def new_import():
    """POST /api/v1/import.new"""
    return {
        "operation": services().imports.api.new_operation(current_user()["_id"]),
        "success": True,
    }


def import_status():
    """GET /api/v1/import.status"""
    return {**services().imports.api.status(), "success": True}


def add_users(body: dict):
    """POST /api/v1/import.addUsers"""
    services().imports.api.add_users(body["users"])
    return OK


def run_import():
    """POST /api/v1/import.run"""
    services().imports.api.run(current_user()["_id"])
    return OK
