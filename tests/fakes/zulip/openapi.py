"""Zulip's OpenAPI description as a contract for the fake and for the bot.

`ZulipContract` checks one request (the parameters a client sent) and one
response (the JSON a server answered) against
`../shared/reference/zulip/openapi-zulip.yaml` (Zulip 9.0-dev, FL 247).

Caveats handled here (reference NOTES §7):

* OpenAPI 3.0 `nullable` is turned into JSON Schema's `null` type.
* Error bodies are validated against the component schema named by their
  `code` (the response-level `oneOf`s overlap), falling back to `CodedError`.
* `RateLimitedError.retry-after` is a float on real servers: it is validated
  as a number.
* `InvalidApiKeyError` is sent with HTTP 401, which the spec does not list.

The YAML (1 MB) is parsed once per process, with libyaml when available and
otherwise through a pickle cache keyed by the file's hash.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import pickle
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

#: A copy of ../shared/reference/zulip/ (Zulip's OpenAPI description, Apache-2.0, and the recorded
#: example payloads) is kept beside the fake, so that the contract tests run wherever the repository is cloned (CI included);
#: DESKBOT_ZULIP_REFERENCE points them at another folder holding a newer one.
REFERENCE_DIR = Path(os.environ.get("DESKBOT_ZULIP_REFERENCE", Path(__file__).resolve().parent / "reference"))
SPEC_PATH = REFERENCE_DIR / "openapi-zulip.yaml"

#: Error codes whose bodies carry extra fields, and the component that describes them.
ERROR_COMPONENTS = {
    "BAD_EVENT_QUEUE_ID": "BadEventQueueIdError",
    "RATE_LIMIT_HIT": "RateLimitedError",
    "INVALID_API_KEY": "InvalidApiKeyError",
    "STREAM_DOES_NOT_EXIST": "NonExistingStreamNameError",
    "USER_DEACTIVATED": "UserDeactivatedError",
}


class ContractViolation(AssertionError):
    """A request or response that the OpenAPI description does not allow."""


def _load_yaml(path: Path) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is not None:
        with path.open("rb") as fh:
            return yaml.load(fh, Loader=loader)
    raw = path.read_bytes()
    cache = Path(tempfile.gettempdir()) / f"zulip-openapi-{hashlib.sha256(raw).hexdigest()[:16]}.pickle"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    data = yaml.safe_load(raw)
    cache.write_bytes(pickle.dumps(data))
    return data


def _to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema objects → JSON Schema draft 4 (nullable, examples)."""
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_json_schema(v) for k, v in node.items() if k not in ("example", "x-code-examples")}
    if out.pop("nullable", False):
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


@functools.lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    spec = _to_json_schema(_load_yaml(SPEC_PATH))
    # Real servers send a float; the spec says integer (NOTES §7, caveat 2).
    rate = spec["components"]["schemas"]["RateLimitedError"]["allOf"][1]["properties"]
    rate["retry-after"] = {"type": "number"}
    return spec


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class ZulipContract:
    """Validate requests and responses of the endpoints the bot uses."""

    def __init__(self) -> None:
        self.spec = _document()
        self._validators: dict[str, jsonschema.Draft4Validator] = {}
        self._routes = [
            (re.compile("^" + re.sub(r"\\\{[^}]+\\\}", r"[^/]+", re.escape(p)) + "$"), p)
            for p in sorted(self.spec["paths"], key=lambda p: (p.count("{"), p))
        ]

    # -- lookup -----------------------------------------------------------------
    def spec_path(self, path: str) -> str:
        """'/users/12' → '/users/{user_id}' (literal paths win; `*_id` placeholders need digits)."""
        candidates = []
        for rx, templ in self._routes:
            if not rx.match(path):
                continue
            names = re.findall(r"\{([^}]+)\}", templ)
            values = [v for t, v in zip(templ.split("/"), path.split("/"), strict=True) if t.startswith("{")]
            ids = [v for n, v in zip(names, values, strict=True) if n.endswith("_id")]
            if all(v.isdigit() for v in ids):
                candidates.append((len(names), -len(ids), templ))
        if not candidates:
            raise ContractViolation(f"{path} is not in the Zulip OpenAPI description")
        return min(candidates)[2]

    def operation(self, method: str, path: str) -> dict[str, Any]:
        templ = self.spec_path(path)
        op = self.spec["paths"][templ].get(method.lower())
        if op is None:
            raise ContractViolation(f"{method} {templ} is not in the Zulip OpenAPI description")
        return op

    def _validator(self, pointer: str) -> jsonschema.Draft4Validator:
        validator = self._validators.get(pointer)
        if validator is None:
            root = {"$ref": pointer, "components": self.spec["components"], "paths": self.spec["paths"]}
            validator = self._validators[pointer] = jsonschema.Draft4Validator(root)
        return validator

    def _check(self, pointer: str, instance: Any, what: str) -> None:
        try:
            errors = sorted(self._validator(pointer).iter_errors(instance), key=lambda e: list(e.path))
        except jsonschema.exceptions._WrappedReferencingError as exc:  # a bad pointer: say which
            raise ContractViolation(f"{what}: cannot resolve {pointer}: {type(exc).__name__}") from None
        if errors:
            best = jsonschema.exceptions.best_match(errors)
            where = "/".join(str(p) for p in best.absolute_path)
            raise ContractViolation(f"{what}: {best.message} (at /{where})")

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.spec
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    # -- requests ---------------------------------------------------------------
    def validate_request(self, method: str, path: str, params: Mapping[str, str]) -> None:
        """`params` are the string values the client sent (query and form merged)."""
        op = self.operation(method, path)
        templ = self.spec_path(path)
        what = f"request {method} {path}"
        declared: dict[str, tuple[dict[str, Any], bool, bool]] = {}  # name → (schema, json, required)
        for raw in op.get("parameters", []):
            param = self._resolve(raw)
            if param["in"] == "path":
                continue
            if "content" in param:
                schema, is_json = param["content"]["application/json"]["schema"], True
            else:
                schema, is_json = param["schema"], False
            declared[param["name"]] = (schema, is_json, bool(param.get("required")))
        body = op.get("requestBody")
        if body is not None:
            form = body["content"].get("application/x-www-form-urlencoded") or body["content"].get(
                "multipart/form-data"
            )
            if form is not None:
                fschema = self._resolve(form["schema"])
                encoding = form.get("encoding", {})
                required = set(fschema.get("required", []))
                for name, schema in fschema.get("properties", {}).items():
                    is_json = encoding.get(name, {}).get("contentType") == "application/json"
                    declared[name] = (schema, is_json, name in required)
        for name, (_, _, required) in declared.items():
            if required and name not in params:
                raise ContractViolation(f"{what}: required parameter {name!r} missing")
        for name, value in params.items():
            if name not in declared:
                raise ContractViolation(f"{what}: parameter {name!r} is not documented")
            schema, is_json, _ = declared[name]
            decoded = self._decode(value, schema, is_json, f"{what} {name}")
            wrapper = {"components": self.spec["components"], **schema}
            errors = list(jsonschema.Draft4Validator(wrapper).iter_errors(decoded))
            if errors:
                raise ContractViolation(f"{what}: parameter {name}={value!r}: {errors[0].message}")
        if templ == "/messages" and method.upper() == "GET":
            # The spec types `anchor` as a plain string; the server accepts these.
            anchor = params.get("anchor")
            if anchor is not None and not (
                anchor in ("newest", "oldest", "first_unread") or anchor.lstrip("-").isdigit()
            ):
                raise ContractViolation(f"{what}: bad anchor {anchor!r}")

    def _decode(self, value: str, schema: dict[str, Any], is_json: bool, what: str) -> Any:
        schema = self._resolve(schema)
        kind = schema.get("type")
        try:
            if is_json or kind in ("array", "object", "boolean"):
                try:
                    return json.loads(value)
                except ValueError:
                    # The server takes a bare string where a string is allowed (e.g. `to`).
                    branches = schema.get("oneOf", []) + schema.get("anyOf", []) + [schema]
                    if any(self._resolve(b).get("type") == "string" for b in branches):
                        return value
                    raise
            if kind == "integer":
                return int(value)
            if kind == "number":
                return float(value)
        except ValueError as exc:
            raise ContractViolation(f"{what}: cannot decode {value!r}: {exc}") from None
        return value

    # -- responses --------------------------------------------------------------
    def validate_response(self, method: str, path: str, status: int, body: Any) -> None:
        templ = self.spec_path(path)
        what = f"response {method} {path} {status}"
        if not isinstance(body, dict):
            raise ContractViolation(f"{what}: body is not a JSON object")
        if body.get("result") == "error":
            code = body.get("code")
            component = ERROR_COMPONENTS.get(code or "", "CodedError")
            self._check(_pointer("components", "schemas", component), body, what)
            return
        op = self.operation(method, path)
        response = op["responses"].get(str(status))
        if response is None:
            raise ContractViolation(f"{what}: status not documented")
        if "$ref" in response:  # e.g. #/components/responses/SimpleSuccess
            base = response["$ref"]
        else:
            base = _pointer("paths", templ, method.lower(), "responses", str(status))
        self._check(base + "/content/application~1json/schema", body, what)

    def validate_event(self, event: dict[str, Any]) -> None:
        """One event object as GET /events returns it."""
        pointer = _pointer(
            "paths",
            "/events",
            "get",
            "responses",
            "200",
            "content",
            "application/json",
            "schema",
        )
        wrapper = {"result": "success", "msg": "", "events": [copy.deepcopy(event)], "queue_id": "q"}
        self._check(pointer, wrapper, f"event {event.get('type')}")


@functools.lru_cache(maxsize=1)
def contract() -> ZulipContract:
    """The process-wide contract (the YAML is parsed once)."""
    return ZulipContract()
