"""The providers this controller runs, wired once: `default_providers(...)`.

Rules:
- Keys are Argo's provider keys: "prometheus" and "web". Anything else a metric names
  (job, plugin, datadog, ...) is `UnsupportedProvider` through `Providers.for_metric`.
- `prometheus_address` overrides every metric's `provider.prometheus.address` (the CLI's
  --prometheus and the demo point templates written for a cluster at a local server).
- `session` is the web provider's HTTP session (tests may inject one); `retry_wait` is the
  tenacity wait between attempts of both providers (tests pass `tenacity.wait_none()`).
"""

from __future__ import annotations

import requests
import tenacity

from analysis.providers import DEFAULT_WAIT, Providers
from analysis.providers.prometheus import PrometheusProvider
from analysis.providers.web import WebProvider


def default_providers(
    *,
    prometheus_address: str | None = None,
    session: requests.Session | None = None,
    retry_wait: tenacity.wait.wait_base = DEFAULT_WAIT,
) -> Providers:
    return Providers(
        {
            "prometheus": PrometheusProvider(address_override=prometheus_address, retry_wait=retry_wait),
            "web": WebProvider(session=session, retry_wait=retry_wait),
        }
    )
