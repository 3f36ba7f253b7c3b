"""The providers this controller runs, wired once: `default_providers(...)`.

Rules:
- Keys are Argo's provider keys: "prometheus", "web" and "plugin" (only the `rollouts/judge`
  plugin, analysis.providers.judge, which queries through the same prometheus provider). Anything else a metric names
  (job, plugin, datadog, ...) is `UnsupportedProvider` through `Providers.for_metric`.
- `prometheus_default` is the address of metrics whose `provider.prometheus.address` is
  unset, and only of those (the CLI's --prometheus, else ARGO_ROLLOUTS_PROMETHEUS_ADDRESS, as
  Argo's environment variable): a template that names several Prometheus servers keeps them.
- `prometheus_address` overrides every metric's address: only for the demo and tests, which
  point templates written for a cluster at a local server.
- `session` is the web provider's HTTP session (tests may inject one); `retry_wait` is the
  tenacity wait between attempts of both providers (tests pass `tenacity.wait_none()`).
"""

from __future__ import annotations

import requests
import tenacity

from analysis.providers import DEFAULT_WAIT, Providers
from analysis.providers.judge import JudgeProvider
from analysis.providers.prometheus import PrometheusProvider
from analysis.providers.web import WebProvider


def default_providers(
    *,
    prometheus_default: str | None = None,
    prometheus_address: str | None = None,
    session: requests.Session | None = None,
    retry_wait: tenacity.wait.wait_base = DEFAULT_WAIT,
) -> Providers:
    prometheus = PrometheusProvider(address_override=prometheus_address, default_address=prometheus_default,
                                    retry_wait=retry_wait)
    return Providers({"prometheus": prometheus, "web": WebProvider(session=session, retry_wait=retry_wait),
                      "plugin": JudgeProvider(prometheus)})
