"""Cold-start reference: a handler that returns a constant."""


def lambda_handler(event: object, context: object) -> dict[str, object]:
    return {"statusCode": 200, "body": "ok"}
