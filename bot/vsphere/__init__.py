"""vCenter access: the only package that imports pyVmomi.

- ``client.VSphere``: async face (own thread pool), live ``Inventory`` of one vCenter.
- ``session``: login, re-login, TLS policy (CA file, SHA-256 pin, explicit insecure), raw SOAP.
- ``inventory``: leaf property paths, continuation-token loop, props → ``bot.model.Host``,
  boot-device detection. ``collect``: the worker-thread retrieval and WaitForUpdatesEx watch.
- ``soap``: the raw PropertyCollector requests and a fast parser for their answers.
- ``dump``: ``esxbot inventory dump [--json]``.
"""
