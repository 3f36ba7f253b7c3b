"""The Kubernetes platform base: what every other layer stands on, knowing nothing above it.

Decides: the Cluster port (get/list/create/patch/patch_status/delete/watch on plain dicts,
typed errors NotFound/Conflict/Gone/Unavailable/...), the kinds it knows and their REST
paths, JSON merge and RFC 6902 patches, clocks (the only place time is read), Kubernetes
timestamps, the labels and annotations Argo puts on objects, reading wire objects of any
shape (`wire`), the actions the plan asks the shell to send, the Event recorder, and the
`Problem` value every checker returns.

May import: the standard library and well-kept libraries (jsonpatch). Nothing from the
other rollouts packages, nothing from analysis (which may import this package).
"""
