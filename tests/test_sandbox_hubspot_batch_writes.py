"""HubSpot batch writes on the sandbox: what a batch answers and stores, input by input, as if each
input were written on its own (the sandbox reads and commits per batch, not per input)."""

from __future__ import annotations

import uuid

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import BatchInputSimplePublicObjectBatchInput, SimplePublicObjectInputForCreate

from sandbox.clients import hubspot_client
from sandbox.runner import SandboxHandle


@pytest.fixture
def hs(clean_sandbox: SandboxHandle) -> HubSpot:
    return hubspot_client(clean_sandbox)


def new_contact(hs: HubSpot, **props: str) -> str:
    props.setdefault("email", f"t{uuid.uuid4().hex[:10]}@example.com")
    return hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties=props)).id


def test_a_conflict_mid_batch_keeps_the_writes_before_it(hs: HubSpot) -> None:
    first, second = new_contact(hs, jobtitle="Before"), new_contact(hs)
    taken = hs.crm.contacts.basic_api.get_by_id(first, properties=["email"]).properties["email"]
    with pytest.raises(Exception) as err:  # noqa: B017 - the status is checked below
        hs.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=[
            {"id": first, "properties": {"jobtitle": "After"}},
            {"id": second, "properties": {"email": taken}},
        ]))
    assert getattr(err.value, "status", None) == 409
    assert hs.crm.contacts.basic_api.get_by_id(first, properties=["jobtitle"]).properties["jobtitle"] == "After"
    assert hs.crm.contacts.basic_api.get_by_id(second, properties=["email"]).properties["email"] != taken
