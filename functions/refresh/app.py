"""Secret refresher: dispatches scheduler and rotation events to the kustomer_token layer."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from kustomer_token.observability import logger, metrics
from kustomer_token.refresh import SecretRefresher
from kustomer_token.settings import RefreshSettings

# Fails at init, naming the setting, when the environment is wrong.
refresher = SecretRefresher.from_settings(RefreshSettings.from_env())


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    return refresher.handle(event, context.get_remaining_time_in_millis() / 1000)
