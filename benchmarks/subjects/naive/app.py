"""Cold-start reference: the handler one writes first, measured once to show what the mint saves.

Powertools resolver, Logger, Metrics and PyJWT imported at module level, the
secret through Powertools parameters, no bytecode shipped.
"""

import os

import jwt
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities import parameters

logger = Logger()
metrics = Metrics(namespace="Naive")
app = APIGatewayHttpResolver()


@app.post("/token")
def token() -> dict[str, object]:
    secret = parameters.get_secret(os.environ["SIGNING_SECRET_ID"], max_age=300)
    claims = app.current_event.request_context.authorizer.jwt_claim
    return {"jwtToken": jwt.encode({"externalId": claims["sub"], "iat": 0}, secret, algorithm="HS256")}


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, object], context: object) -> dict[str, object]:
    return app.resolve(event, context)
