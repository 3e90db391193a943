"""The application factory: the spec, the services, the error envelope, one ASGI app."""

from __future__ import annotations

import contextlib
import copy

import connexion
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions

from ferry.kernel.config import Config
from ferry.services import Services
from handlers import errors
from handlers.base64_upload import StreamedBase64Middleware
from handlers.body_limits import BodyLimitMiddleware, upload_body_limit
from handlers.connexion_speedups import decorate_handlers_once
from handlers.context import SPEC_PATH, ServicesMiddleware, spec
from handlers.observe import RequestLogMiddleware
from handlers.response_headers import SPEC_JSON_PATH, SWAGGER_UI_PATH, ResponseHeadersMiddleware
from handlers.ui.app import UiMiddleware
from handlers.unknown_api_paths import UnknownApiPathMiddleware
from handlers.validation import VALIDATOR_MAP
from handlers.webdav_verbs import WebDavVerbsMiddleware


def create_app(
    config: Config | None = None, services: Services | None = None
) -> connexion.AsyncApp:
    """An app over `config.data_dir` (or over ready-made `services`, which it then owns).

    The services start when the ASGI server starts the app (its lifespan) and close
    when it stops.
    """
    config = config or Config()
    services = services or Services.open(config)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        services.start()
        yield
        services.close()

    decorate_handlers_once()
    app = connexion.AsyncApp(
        __name__,
        specification_dir=SPEC_PATH.parent,
        lifespan=lifespan,
        swagger_ui_options=SwaggerUIOptions(
            swagger_ui_path=SWAGGER_UI_PATH,
            spec_path=SPEC_JSON_PATH,
        ),
    )
    app.add_api(
        # Connexion fills in defaults in the dictionary it is given.
        copy.deepcopy(spec()),
        strict_validation=True,
        validate_responses=config.validate_responses,
        validator_map=VALIDATOR_MAP,
    )
    # Bodies: refused over their route's limit before they are read (before
    # authentication too, so a stranger cannot make the server read a big one), and an
    # upload's base64 streamed out of its JSON once the caller is known.
    app.add_middleware(
        BodyLimitMiddleware,
        MiddlewarePosition.BEFORE_SECURITY,
        json_limit=config.max_json_body,
        upload_limit=upload_body_limit(config.max_upload_size),
        file_limit=config.max_upload_size,
    )
    # An API path the spec does not serve never reaches the file browser's catch-all.
    app.add_middleware(UnknownApiPathMiddleware, MiddlewarePosition.BEFORE_ROUTING)
    app.add_middleware(StreamedBase64Middleware, MiddlewarePosition.BEFORE_VALIDATION)
    app.add_middleware(WebDavVerbsMiddleware, MiddlewarePosition.BEFORE_ROUTING)
    app.add_middleware(ServicesMiddleware, MiddlewarePosition.BEFORE_EXCEPTION, services=services)
    app.add_middleware(
        RequestLogMiddleware, MiddlewarePosition.BEFORE_EXCEPTION, telemetry=services.telemetry
    )
    # Outside the error handlers, so error answers get the safety headers too.
    app.add_middleware(ResponseHeadersMiddleware, MiddlewarePosition.BEFORE_EXCEPTION)
    # The web page under /ui/: its own routes, cookie sessions and page headers.
    app.add_middleware(UiMiddleware, MiddlewarePosition.BEFORE_EXCEPTION, services=services)
    errors.register(app)
    app.services = services
    return app
