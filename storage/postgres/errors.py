"""What the PostgreSQL backend raises; importable without loading the driver."""


class DatabaseUnavailable(RuntimeError):
    """The database URL does not lead to a PostgreSQL server Ferry can use."""
