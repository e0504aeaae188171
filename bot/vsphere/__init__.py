"""vCenter access: the only package that imports pyVmomi.

- ``client.VSphere``: async face (own thread pool), live ``Inventory`` of one vCenter; ``session``:
  login, re-login, TLS policy (CA file, SHA-256 pin, explicit insecure), raw SOAP connections.
- ``host_retrieval``: leaf property paths, props → ``bot.model.Host``, boot-device detection;
  ``hostprops``: the host property decoders; ``collect``: the worker-thread retrieval and the
  WaitForUpdatesEx watch; ``soap`` and ``soap_scan``: the raw PropertyCollector requests and the fast
  parsers of their answers.
- ``events``/``eventfeed``: vCenter events as ``VCenterEvent`` from an EventHistoryCollector.
- ``host_ops``: the pyVmomi-free ``HostOps`` protocol host actions use; ``host_actions``: its vCenter
  implementation; ``lifecycle``: vLCM (cluster image) remediation over REST.
- ``dump``: ``esxbot inventory dump [--json]``.
"""
