"""Metadata API (SOAP) ``createMetadata`` / ``readMetadata`` for ``CustomField``.

Enough for simple-salesforce's ``sf.mdapi.CustomField.create([...])`` and ``.read([...])``
(zeep with the WSDL bundled in simple-salesforce): the writeback creates its score fields
this way. A created field is added to the registry and its table at once, so it shows in
describe and can be queried and written straight away.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from lxml import etree
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.salesforce.context import API_LIMIT, SalesforceContext, check_version
from sandbox.salesforce.errors import SalesforceError
from sandbox.salesforce.schema import CUSTOM_FIELD_OBJECTS, CUSTOM_FIELD_TYPES, SfField

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
MD_NS = "http://soap.sforce.com/2006/04/metadata"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
MAX_PER_CALL = 10
_DESCRIBE_TO_MD = {v: k for k, v in CUSTOM_FIELD_TYPES.items() if k not in ("LongTextArea",)}


class MetadataFault(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _envelope(body: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP_NS}" xmlns="{MD_NS}" '
        f'xmlns:xsi="{XSI_NS}"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>'
    )


def _fault(code: str, message: str) -> Response:
    body = (f"<soapenv:Fault><faultcode>sf:{escape(code)}</faultcode><faultstring>{escape(code)}: "
            f"{escape(message)}</faultstring></soapenv:Fault>")
    return Response(_envelope(body), status_code=500, media_type="text/xml; charset=utf-8")


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _children(element: Any) -> dict[str, str]:
    return {_local(child.tag): (child.text or "").strip() for child in element if _local(child.tag)}


def _xsi_type(element: Any) -> str:
    value = element.get(f"{{{XSI_NS}}}type") or ""
    return value.rpartition(":")[2]


class MetadataApi:
    def __init__(self, ctx: SalesforceContext) -> None:
        self.ctx = ctx

    def create_field(self, spec: dict[str, str]) -> SfField:
        full_name = spec.get("fullName", "")
        object_name, _, field_name = full_name.partition(".")
        obj = self.ctx.org.schema.get(object_name)
        if obj is None or obj.name not in CUSTOM_FIELD_OBJECTS:
            raise MetadataFault("INVALID_CROSS_REFERENCE_KEY", f"In field: fullName - no CustomObject named "
                                f"{object_name} found (the sandbox supports {', '.join(CUSTOM_FIELD_OBJECTS)})")
        if not field_name.endswith("__c") or len(field_name) <= 3 or not field_name[:-3].replace("_", "").isalnum():
            raise MetadataFault("FIELD_INTEGRITY_EXCEPTION", f"Custom field names must end with __c and use "
                                f"letters, digits and underscores: {field_name!r}")
        if obj.field(field_name) is not None:
            raise MetadataFault("DUPLICATE_DEVELOPER_NAME", f"There is already a field named {field_name} on "
                                f"{obj.name}.")
        md_type = spec.get("type", "")
        if md_type not in CUSTOM_FIELD_TYPES:
            raise MetadataFault("FIELD_INTEGRITY_EXCEPTION", f"Unsupported field type {md_type!r}; the sandbox "
                                f"supports {', '.join(CUSTOM_FIELD_TYPES)}")
        label = spec.get("label", "")
        if not label:
            raise MetadataFault("REQUIRED_FIELD_MISSING", "Required field is missing: label")
        kind = CUSTOM_FIELD_TYPES[md_type]
        length = precision = scale = 0
        reference_to: tuple[str, ...] = ()
        if md_type == "Lookup":  # Salesforce requires the target object and a relationship name
            target = self.ctx.org.schema.get(spec.get("referenceTo", ""))
            if target is None:
                raise MetadataFault("FIELD_INTEGRITY_EXCEPTION",
                                    f"referenceTo: no object named {spec.get('referenceTo', '')!r}")
            if not spec.get("relationshipName"):
                raise MetadataFault("REQUIRED_FIELD_MISSING", "Required field is missing: relationshipName")
            reference_to, length = (target.name,), 18
        try:
            if md_type in ("Text",):
                length = int(spec.get("length") or 0)
                if not 1 <= length <= 255:
                    raise MetadataFault("FIELD_INTEGRITY_EXCEPTION", "Length must be between 1 and 255 for Text")
            elif md_type in ("TextArea", "LongTextArea"):
                length = int(spec.get("length") or 32768)
            elif md_type in ("Number", "Currency", "Percent"):
                precision = int(spec.get("precision") or 18)
                scale = int(spec.get("scale") or 0)
                if not 1 <= precision <= 18 or not 0 <= scale <= precision:
                    raise MetadataFault("FIELD_INTEGRITY_EXCEPTION",
                                        "Precision must be 1..18 and scale between 0 and precision")
            elif kind in ("email", "url", "phone", "picklist"):
                length = {"email": 80, "url": 255, "phone": 40, "picklist": 255}[kind]
        except ValueError as exc:
            raise MetadataFault("FIELD_INTEGRITY_EXCEPTION", f"invalid number in field definition: {exc}") from None
        field = SfField(name=field_name, type=kind, label=label, length=length, precision=precision, scale=scale,
                        custom=True, nillable=spec.get("required", "false") != "true", reference_to=reference_to)
        self.ctx.org.schema.add_field(obj.name, field)
        return field

    def read_field(self, full_name: str) -> str:
        object_name, _, field_name = full_name.partition(".")
        obj = self.ctx.org.schema.get(object_name)
        f = obj.field(field_name) if obj is not None else None
        if f is None or not f.custom or obj is None:
            return '<records xsi:nil="true"/>'
        md_type = _DESCRIBE_TO_MD.get(f.type, "Text")
        parts = [f"<fullName>{escape(obj.name + '.' + f.name)}</fullName>", "<externalId>false</externalId>",
                 f"<label>{escape(f.label)}</label>"]
        if f.length and md_type in ("Text", "TextArea"):
            parts.append(f"<length>{f.length}</length>")
        if md_type in ("Number", "Currency", "Percent"):
            parts.append(f"<precision>{f.precision}</precision>")
        if md_type == "Lookup" and f.reference_to:
            parts.append("<deleteConstraint>SetNull</deleteConstraint>")
            parts.append(f"<referenceTo>{escape(f.reference_to[0])}</referenceTo>")
            parts.append(f"<relationshipName>{escape(f.name[:-3])}</relationshipName>")
        parts.append(f"<required>{'false' if f.nillable else 'true'}</required>")
        if md_type in ("Number", "Currency", "Percent"):
            parts.append(f"<scale>{f.scale}</scale>")
        parts.append(f"<type>{md_type}</type>")
        return f'<records xsi:type="CustomField">{"".join(parts)}</records>'

    async def endpoint(self, request: Request) -> Response:
        ctx = self.ctx
        try:
            check_version(request.path_params.get("version"))
        except SalesforceError as exc:
            return _fault("INVALID_OPERATION", exc.message)
        try:
            root = etree.fromstring(await request.body(), parser=etree.XMLParser(resolve_entities=False,
                                                                                 no_network=True))
        except etree.XMLSyntaxError as exc:
            return _fault("INVALID_XML", f"the request is not valid XML: {exc}")
        header = root.find(f"{{{SOAP_NS}}}Header")
        session = None
        if header is not None:
            for element in header.iter():
                if _local(element.tag) == "sessionId":
                    session = (element.text or "").strip()
        if not session or ctx.auth.user_for_token(session) is None:
            return _fault("INVALID_SESSION_ID", "Invalid Session ID found in SessionHeader: Illegal Session")
        if not ctx.limits.try_consume(API_LIMIT):
            return _fault("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        body = root.find(f"{{{SOAP_NS}}}Body")
        operation = body[0] if body is not None and len(body) else None
        if operation is None:
            return _fault("INVALID_OPERATION", "empty SOAP body")
        name = _local(operation.tag)
        try:
            if name == "createMetadata":
                return self._create(request, operation)
            if name == "readMetadata":
                return self._read(operation)
        except MetadataFault as exc:
            return _fault(exc.code, exc.message)
        return _fault("INVALID_OPERATION", f"{name} is not supported by the sandbox (createMetadata and "
                      "readMetadata for CustomField are)")

    def _create(self, request: Request, operation: Any) -> Response:
        items = [child for child in operation if _local(child.tag) == "metadata"]
        if len(items) > MAX_PER_CALL:
            raise MetadataFault("LIMIT_EXCEEDED", f"at most {MAX_PER_CALL} components per call")
        results = []
        written = []
        for item in items:
            spec = _children(item)
            full_name = spec.get("fullName", "")
            written.append(full_name)
            if _xsi_type(item) != "CustomField":
                raise MetadataFault("INVALID_TYPE", f"only CustomField metadata is supported, got "
                                    f"{_xsi_type(item) or 'no xsi:type'}")
            try:
                self.create_field(spec)
            except MetadataFault as exc:
                results.append(f"<result><errors><message>{escape(exc.message)}</message><statusCode>{exc.code}"
                               f"</statusCode></errors><fullName>{escape(full_name)}</fullName>"
                               "<success>false</success></result>")
            else:
                results.append(f"<result><fullName>{escape(full_name)}</fullName><success>true</success></result>")
        request.state.fields_written = written
        return Response(_envelope(f"<createMetadataResponse>{''.join(results)}</createMetadataResponse>"),
                        media_type="text/xml; charset=utf-8")

    def _read(self, operation: Any) -> Response:
        md_type = ""
        names = []
        for child in operation:
            if _local(child.tag) == "type":
                md_type = (child.text or "").strip()
            elif _local(child.tag) == "fullNames":
                names.append((child.text or "").strip())
        if md_type != "CustomField":
            raise MetadataFault("INVALID_TYPE", f"only CustomField can be read from the sandbox, got {md_type!r}")
        if len(names) > MAX_PER_CALL:
            raise MetadataFault("LIMIT_EXCEEDED", f"at most {MAX_PER_CALL} components per call")
        records = "".join(self.read_field(n) for n in names)
        return Response(_envelope(f"<readMetadataResponse><result>{records}</result></readMetadataResponse>"),
                        media_type="text/xml; charset=utf-8")


def routes(ctx: SalesforceContext) -> list[Route]:
    api = MetadataApi(ctx)
    return [Route("/services/Soap/m/{version}", api.endpoint, methods=["POST"])]
