"""schemathesis against ``/openapi.json``: no 5xx, and every answer matches its schema."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from crossrank.serve.app import create_app
from crossrank.serve.security import AccessPolicy
from crossrank.serve.service import ServerConfig

pytestmark = pytest.mark.slow  # they use the session's trained tiny model

ROUTES = {"/v1/rerank", "/v2/rerank", "/rerank", "/search", "/health", "/metrics"}


def test_every_route_answers_within_its_schema(tiny_artifact):
    config = ServerConfig(model=str(tiny_artifact), max_docs=20, max_body_bytes=1 << 16)
    app = create_app(config, AccessPolicy(allowed_hosts=("*",)))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == ROUTES

    for op in operations:

        @given(case=op.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case):
            # Limits a JSON Schema cannot state (visible characters beyond \\S, body bytes,
            # tokens with truncate: false, --max-docs) refuse some schema-valid bodies with
            # 4xx; every other check runs, and the malformed-body tests cover the refusals.
            case.call_and_validate(
                headers={"Content-Type": "application/json"},
                excluded_checks=[positive_data_acceptance],
            )

        check()
