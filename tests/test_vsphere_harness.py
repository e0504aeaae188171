"""The vcsimlab harness itself: model applied, SOAP additions and fault hooks visible over the API."""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Iterator

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim

from tests.fixtures.vcsim import HookError, Vcsim, VcsimFactory


@contextlib.contextmanager
def _connect(lab: Vcsim) -> Iterator[vim.ServiceInstance]:
    context = ssl.create_default_context(cafile=str(lab.ca_file))
    si = SmartConnect(host=lab.host, port=lab.port, user=lab.user, pwd=lab.password, sslContext=context)
    try:
        yield si
    finally:
        Disconnect(si)
        si._stub.DropConnections()


def _host(si: vim.ServiceInstance, name: str) -> vim.HostSystem:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
    try:
        return next(h for h in view.view if h.name == name)
    finally:
        view.Destroy()


def test_model_is_applied(vcsim: Vcsim) -> None:
    hosts = vcsim.hosts()
    usb = hosts["esx-usb-01.lab.local"]
    assert (usb["version"], usb["build"], usb["bootbank_mounted"]) == ("7.0.2", "17867351", True)
    assert hosts["esx-bootbank-03.lab.local"]["bootbank_mounted"] is False
    assert hosts["esx-down-04.lab.local"]["connection_state"] == "disconnected"
    assert len(hosts) == 8


def test_hook_errors_are_clear(vcsim: Vcsim) -> None:
    with pytest.raises(HookError) as caught:
        vcsim.hook("power", host="nope", state="on")
    assert caught.value.status == 404


def test_host_ops_patch_and_reboot(vcsim_factory: VcsimFactory) -> None:
    lab = vcsim_factory()
    with _connect(lab) as si:
        host = _host(si, "esx-disk-02.lab.local")
        with pytest.raises(vim.fault.InvalidState):
            WaitForTask(host.ShutdownHost_Task(force=False))
        for vm in host.vm:
            WaitForTask(vm.PowerOffVM_Task())
        WaitForTask(host.EnterMaintenanceMode_Task(timeout=0))
        assert host.runtime.inMaintenanceMode is True
        lab.hook("fail-next-patch", host=host.name)
        bundle = ["https://depot.example/VMware-ESXi-8.0.3-24022510-depot.zip"]
        with pytest.raises(vim.fault.PlatformConfigFault):
            WaitForTask(host.configManager.patchManager.InstallHostPatchV2_Task(bundleUrls=bundle))
        WaitForTask(host.configManager.patchManager.InstallHostPatchV2_Task(bundleUrls=bundle))
        assert lab.hosts()[host.name]["staged_build"] == {"version": "8.0.3", "build": "24022510"}
        WaitForTask(host.RebootHost_Task(force=False))
        assert host.runtime.connectionState == "notResponding"
        deadline = time.monotonic() + 5
        while host.runtime.connectionState != "connected" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert host.summary.config.product.build == "24022510"
        assert host.summary.rebootRequired is False


def test_maintenance_mode_waits_for_powered_on_vms(vcsim_factory: VcsimFactory) -> None:
    lab = vcsim_factory()
    with _connect(lab) as si:
        busy = [h["name"] for h in lab.hook("hosts") if h["vms"] and h["connection_state"] == "connected"]
        host = _host(si, busy[0])
        assert any(vm.runtime.powerState == "poweredOn" for vm in host.vm)
        with pytest.raises(vim.fault.Timedout):
            WaitForTask(host.EnterMaintenanceMode_Task(timeout=0))
        task = host.EnterMaintenanceMode_Task(timeout=10)
        for vm in host.vm:
            WaitForTask(vm.PowerOffVM_Task())
        WaitForTask(task)
        assert host.runtime.inMaintenanceMode is True


def test_bootbank_loss_hook_is_published(vcsim_factory: VcsimFactory) -> None:
    lab = vcsim_factory()
    with _connect(lab) as si:
        host = _host(si, "esx-usb-01.lab.local")
        pc = si.content.propertyCollector
        spec = vim.PropertyFilterSpec(
            objectSet=[vim.ObjectSpec(obj=host)],
            propSet=[
                vim.PropertySpec(
                    type=vim.HostSystem, pathSet=["config.fileSystemVolume.mountInfo", "overallStatus"]
                )
            ],
        )
        pc.CreateFilter(spec, partialUpdates=False)
        first = pc.WaitForUpdatesEx("", vim.WaitOptions(maxWaitSeconds=0))
        lab.hook("bootbank-lost", host=host.name)
        update = pc.WaitForUpdatesEx(first.version, vim.WaitOptions(maxWaitSeconds=5))
        changes = {c.name: c.val for f in update.filterSet for o in f.objectSet for c in o.changeSet}
        assert changes["overallStatus"] == "yellow"
        mounted = {m.volume.name: m.mountInfo.mounted for m in changes["config.fileSystemVolume.mountInfo"]}
        assert mounted == {"BOOTBANK1": False, "BOOTBANK2": False, "OSDATA-5f1c": True}
        query = vim.event.EventFilterSpec(eventTypeId=["GeneralHostErrorEvent"])
        events = si.content.eventManager.QueryEvents(query)
        assert any("Bootbank cannot be found at path '/bootbank'" in e.fullFormattedMessage for e in events)
