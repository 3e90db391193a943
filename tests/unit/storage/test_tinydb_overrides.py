"""TinyDB's private behaviour that Ferry replaces: still there to replace, and replaced well."""

import inspect
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from tinydb import TinyDB
from tinydb.storages import MemoryStorage
from tinydb.table import Table

from storage.store import Store
from storage.tinydb_overrides import WRITTEN_AGAINST, FerryTinyDB, KeyedTable
from storage.users import UserRepository

PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"


def test_the_installed_tinydb_is_one_the_overrides_were_written_for():
    pins = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    assert WRITTEN_AGAINST in pins, "the TinyDB pin moved: review storage/tinydb_overrides.py"
    assert Requirement(WRITTEN_AGAINST).specifier.contains(version("tinydb"))


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        ("_update_table", ["self", "updater"]),  # replaced
        ("_get_next_id", ["self"]),  # replaced
        ("_read_table", ["self"]),  # called
    ],
)
def test_the_private_table_methods_replaced_or_called_are_still_there(name, parameters):
    method = getattr(Table, name, None)
    assert callable(method), f"TinyDB's Table has no {name} any more"
    assert list(inspect.signature(method).parameters) == parameters


def test_tables_still_reach_their_storage_and_databases_still_pick_their_table_class():
    assert TinyDB.table_class is Table and FerryTinyDB.table_class is KeyedTable
    table = TinyDB(storage=MemoryStorage).table("t")
    assert isinstance(table._storage, MemoryStorage)


def test_a_batch_with_a_taken_id_is_refused_whole(tmp_path):
    store = Store(tmp_path)
    users = UserRepository(store)
    users.insert({"_id": "u2", "username": "two"})
    with pytest.raises(ValueError, match="u2"):
        users.insert_many([{"_id": "u1", "username": "one"}, {"_id": "u2", "username": "dup"}])
    with pytest.raises(ValueError, match="u3"):
        users.insert_many([{"_id": "u3", "username": "a"}, {"_id": "u3", "username": "b"}])
    assert users.get("u1") is None and users.get("u3") is None
    assert users.get("u2")["username"] == "two"
    store.close()
    reopened = Store(tmp_path)
    assert UserRepository(reopened).get("u1") is None
    reopened.close()
