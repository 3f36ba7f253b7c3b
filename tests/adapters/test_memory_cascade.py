"""InMemoryCluster's delete cascade finds dependents by an owner index, never by a scan of the store.

What is proven: a delete looks at no stored object beyond the deleted one's dependents (the
store raises on a scan), yet still removes orphans transitively and keeps an object that another
live owner holds; the index follows ownerReferences changed by a later write (an owner dropped
no longer cascades, an owner added does); a delete of an owner whose dependent was deleted
first cascades to nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from rollouts.memory.cluster import InMemoryCluster


class NoScan(dict[Any, Any]):
    """The store, refusing a walk over all its objects (what made a delete O(objects))."""

    def values(self) -> Any:
        raise AssertionError("the store was scanned")

    def items(self) -> Any:
        raise AssertionError("the store was scanned")

    def __iter__(self) -> Any:
        raise AssertionError("the store was scanned")


def owner(name: str) -> dict[str, Any]:
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": "team"}}


def ref(obj: dict[str, Any], *, controller: bool = False) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"],
            "controller": controller}


def dependent(name: str, *owners: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": "team",
                                               "ownerReferences": [ref(o) for o in owners]}}


@pytest.fixture
def cluster() -> InMemoryCluster:
    return InMemoryCluster(workloads=False)


def names(cluster: InMemoryCluster) -> list[str]:
    return [o["metadata"]["name"] for o in cluster.list("ConfigMap", "team")]


def test_a_delete_cascades_transitively_without_scanning_the_store(cluster: InMemoryCluster) -> None:
    root, other = cluster.create(owner("root")), cluster.create(owner("other"))
    child = cluster.create(dependent("child", root))
    cluster.create(dependent("grandchild", child))
    cluster.create(dependent("shared", root, other))  # another live owner holds it
    for i in range(200):
        cluster.create(dependent(f"bystander{i:03d}", other))
    cluster._objects = NoScan(cluster._objects)  # the store itself is what is checked
    cluster.delete("ConfigMap", "root", "team")
    cluster._objects = dict(cluster._objects)
    left = names(cluster)
    assert not {"root", "child", "grandchild"} & set(left)
    assert "shared" in left and "other" in left and len(left) == 202


def test_the_owner_index_follows_owner_references_changed_by_a_write(cluster: InMemoryCluster) -> None:
    first, second = cluster.create(owner("first")), cluster.create(owner("second"))
    moved = cluster.create(dependent("moved", first))
    cluster.replace({**moved, "metadata": {**moved["metadata"], "ownerReferences": [ref(second)]}})
    cluster.delete("ConfigMap", "first", "team")
    assert "moved" in names(cluster)  # first is no longer its owner
    cluster.delete("ConfigMap", "second", "team")
    assert names(cluster) == []


def test_deleting_a_dependent_first_leaves_its_owner_nothing_to_cascade(cluster: InMemoryCluster) -> None:
    root = cluster.create(owner("root"))
    cluster.create(dependent("child", root))
    cluster.delete("ConfigMap", "child", "team")
    cluster.create(dependent("child", root))  # the same name again, a new uid, the same owner
    cluster.delete("ConfigMap", "root", "team")
    assert names(cluster) == []
