"""What the PostgreSQL backend raises; importable without loading the driver."""


class DatabaseUnavailable(RuntimeError):
    """The database URL does not lead to a PostgreSQL server Ferry can use."""


class DatabaseInUse(RuntimeError):
    """Another running server already works on this database's downloads and imports."""
