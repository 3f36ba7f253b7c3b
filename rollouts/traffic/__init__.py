"""Traffic routers: the router port and Istio, with the checks of the objects Istio routes through.

Decides: how a desired canary weight and pod hashes become VirtualService and
DestinationRule patches (`istio`), which router a Rollout uses (`router`), and the rules a
referenced VirtualService, DestinationRule and the Services must satisfy (`checks`, which
calls `istio.validate_virtual_service`, the checker the router runs too). Knows meshes, not
the plan: the pass that uses a router is rollouts.plan.routing.

May import: rollouts.spec, rollouts.platform.
"""
