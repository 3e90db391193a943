"""Memory that must stay bounded however long the server runs, and the allocator cap."""

from ferry.ops import allocator
from ferry.ops.telemetry import IMPORT_STATUSES_KEPT, Telemetry


def test_import_status_table_is_bounded_and_still_counts_each_change_once():
    telemetry = Telemetry()
    operations = IMPORT_STATUSES_KEPT + 500
    for number in range(operations):
        operation = {"_id": f"op{number}", "importerKey": "csv", "status": "importer_new"}
        telemetry.import_status(operation)
        telemetry.import_status(operation)  # a repeat is not a change
        telemetry.import_status({**operation, "status": "importer_done"})
    assert len(telemetry._import_status) == IMPORT_STATUSES_KEPT

    def counted(status):
        return telemetry.registry.get_sample_value(
            "ferry_import_operations_total", {"importer": "csv", "status": status}
        )

    assert counted("importer_new") == counted("importer_done") == operations


def test_an_operators_own_arena_setting_wins():
    assert not allocator.limit_arenas({"MALLOC_ARENA_MAX": "8"})
    assert not allocator.limit_arenas({"GLIBC_TUNABLES": "glibc.malloc.arena_max=8"})
