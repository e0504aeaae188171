"""Feature facts (``model.FEATURES``) from what the inventory retrieval collects, with where each came from.

Leaf paths only, fetched in the same one-call retrieval and ``WaitForUpdatesEx`` filter as the rest of
the inventory (bot/vsphere/host_retrieval.py):
- cluster settings from the host's ``ClusterComputeResource``: HA and DRS
  (``configuration.dasConfig.enabled``, ``configuration.drsConfig.enabled``); a host outside a cluster
  has neither;
- vSAN from the host's own vSAN configuration (``config.vsanHostConfig.enabled``: the host is a vSAN node);
- iSCSI, FCoE and NVMe over Fabrics from the storage adapter types already collected for the boot device
  (``HostInternetScsiHba``; ``HostFibreChannelOverEthernetHba``; ``HostTcpHba``/``HostRdmaHba`` or an
  ``nvmetcp``/``nvmerdma`` adapter driver). FC-NVMe runs on an ordinary FC HBA, so a host with FC HBAs and no
  other NVMe-oF adapter leaves ``nvmeof`` unknown;
- SR-IOV from ``config.pciPassthruInfo`` (a ``HostSriovInfo`` with ``sriovEnabled``);
- NSX from ``config.network.opaqueSwitch`` (N-VDS) and ``config.network.proxySwitch`` (``nsxtEnabled``: NSX on
  a vSphere Distributed Switch);
- vMotion from ``summary.config.vmotionEnabled`` (a vmkernel NIC has the vMotion service; a leaf, where
  ``config.virtualNicManagerInfo.netConfig`` would bring every service's candidate NICs, ~5 KB a host);
- PMem and vVols from the types of the host's datastores (``datastore`` → ``Datastore.summary.type``
  ``PMEM``, ``VVOL``).
RDM is not collected: it needs every VM's device list, far more than the inventory should fetch; it stays
unknown (tag such hosts ``rdm``).
A host whose configuration was not reported (disconnected, no ``config.*`` at all) has no facts but HA/DRS.
vCenter leaves an unset optional property out of its answer, so once the host's configuration is there an
absent switch, passthrough or datastore list means "none".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.model import FeatureFact
from bot.vsphere.hostprops import Adapter

FEATURE_HOST_PATHS = (
    "config.vsanHostConfig.enabled",
    "summary.config.vmotionEnabled",
    "config.pciPassthruInfo",
    "config.network.opaqueSwitch",
    "config.network.proxySwitch",
    "datastore",
)
FEATURE_CLUSTER_PATHS = ("configuration.dasConfig.enabled", "configuration.drsConfig.enabled")
FEATURE_DATASTORE_PATHS = ("summary.type",)

_CONFIG = "config.storageDevice.hostBusAdapter"  # present whenever the host reported its configuration
_FC = ("HostFibreChannelHba", "HostFibreChannelOverEthernetHba")
_NVMEOF_TYPES = ("HostTcpHba", "HostRdmaHba")
_NVMEOF_DRIVERS = ("nvmetcp", "nvmerdma")


def _adapter_fact(adapters: Sequence[Adapter], found: Sequence[Adapter], what: str) -> FeatureFact:
    if found:
        return FeatureFact(True, f"vCenter: {what} adapter {', '.join(a.device for a in found)}")
    return FeatureFact(False, f"vCenter: no {what} adapter among {len(adapters)}")


def _cluster_facts(cluster: Mapping[str, Any] | None, name: str | None) -> dict[str, FeatureFact]:
    if cluster is None:
        return {
            "ha": FeatureFact(False, "vCenter: the host is not in a cluster"),
            "drs": FeatureFact(False, "vCenter: the host is not in a cluster"),
        }
    facts = {}
    for feature, path, label in (
        ("ha", "configuration.dasConfig.enabled", "HA"),
        ("drs", "configuration.drsConfig.enabled", "DRS"),
    ):
        value = cluster.get(path)
        if isinstance(value, bool):
            state = "enabled" if value else "disabled"
            facts[feature] = FeatureFact(value, f"vCenter: cluster {name or '?'} has {label} {state}")
    return facts


def host_features(
    props: Mapping[str, Any],
    cluster: Mapping[str, Any] | None,
    cluster_name: str | None,
    datastore_types: Sequence[str] | None,
) -> dict[str, FeatureFact]:
    """The facts vCenter tells for one host (rules in the module docstring); missing ones are unknown.
    ``cluster``: the properties of the host's cluster, None for a host outside one."""
    facts = _cluster_facts(cluster, cluster_name)
    if _CONFIG not in props:
        return facts
    vsan = props.get("config.vsanHostConfig.enabled")
    if isinstance(vsan, bool):
        facts["vsan"] = FeatureFact(
            vsan, f"vCenter: vSAN is {'enabled' if vsan else 'not enabled'} on the host"
        )
    adapters: Sequence[Adapter] = props.get(_CONFIG) or ()
    facts["iscsi"] = _adapter_fact(
        adapters, [a for a in adapters if a.type == "HostInternetScsiHba"], "iSCSI"
    )
    facts["fcoe"] = _adapter_fact(
        adapters, [a for a in adapters if a.type == "HostFibreChannelOverEthernetHba"], "FCoE"
    )
    nvmeof = [a for a in adapters if a.type in _NVMEOF_TYPES or a.driver.lower() in _NVMEOF_DRIVERS]
    if nvmeof or not any(a.type in _FC for a in adapters):
        facts["nvmeof"] = _adapter_fact(adapters, nvmeof, "NVMe over Fabrics")
    sriov = props.get("config.pciPassthruInfo") is True
    facts["sriov"] = FeatureFact(
        sriov,
        "vCenter: " + ("a PCI device has SR-IOV enabled" if sriov else "no PCI device has SR-IOV enabled"),
    )
    switches = props.get("config.network.opaqueSwitch") or 0
    nsx_vds = props.get("config.network.proxySwitch") is True
    if switches or nsx_vds:
        where = "an NSX host switch (N-VDS)" if switches else "a distributed switch with NSX enabled"
        facts["nsx"] = FeatureFact(True, f"vCenter: the host has {where}")
    else:
        facts["nsx"] = FeatureFact(False, "vCenter: no NSX host switch")
    vmotion = props.get("summary.config.vmotionEnabled")
    if isinstance(vmotion, bool):
        facts["vmotion"] = FeatureFact(
            vmotion, f"vCenter: vMotion is {'enabled' if vmotion else 'not enabled'} on the host"
        )
    if datastore_types is not None:
        for feature, kind, label in (("pmem", "PMEM", "PMem"), ("vvols", "VVOL", "vVols")):
            present = kind in datastore_types
            facts[feature] = FeatureFact(
                present, f"vCenter: {'a' if present else 'no'} {label} datastore among {len(datastore_types)}"
            )
    return facts
