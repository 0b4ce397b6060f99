"""The HubSpot surface of the sandbox (served on the same HTTPS server as Salesforce).

Endpoints, with HubSpot's request and response shapes:

- ``POST /oauth/v1/token`` (refresh-token grant), ``GET /oauth/v1/access-tokens/{token}``
- ``/crm/v3/objects/{companies|contacts|deals|calls|emails|meetings|notes|tasks}``: list, get, create,
  update, archive, ``batch/{read,create,update,upsert,archive}``, ``merge``, ``search``
- ``/crm/v3/properties/{objectType}``: list, read, create, update, archive, ``batch/read``, ``groups``
- ``/crm/v4/objects/{type}/{id}/associations/{toType}`` and ``/crm/v4/associations/{from}/{to}/batch/...``
- ``GET /email/public/v1/events``, ``GET /events/v3/events`` (and ``/event-types``)

Use from Python::

    with run_sandbox(seed=1, size="S") as handle:
        hs = sandbox.clients.hubspot_client(handle)   # private-app token, host and CA set
        hs.crm.contacts.basic_api.get_page(limit=100)
        handle.hubspot_limits.configure(per_ten_seconds=100)   # a lower API tier
        handle.hubspot_portal.load("contacts", records)        # bulk records for a test

Limits are per portal: a rolling 10-second window (190 by default), a daily budget and a
per-second cap on search; every response but search's carries ``X-HubSpot-RateLimit-*`` headers.
"""
