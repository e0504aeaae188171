package main

// hostops.go: host operations vcsim 0.24.2 lacks or gets wrong, served by a side object per
// host (type HostSystemOps, same moref value) to which the HTTP layer rewrites `_this`
// (see interceptor.go). The real *simulator.HostSystem stays untouched in the registry.
//
//   ShutdownHost_Task(force)  InvalidState unless connected; force=false needs maintenance mode.
//                             After bootDelay/2: poweredOff + notResponding.
//   RebootHost_Task(force)    same checks; unknown + notResponding at once, after bootDelay
//                             powered on again with a new bootTime and any staged patch applied.
//   EnterMaintenanceMode_Task(timeout)  InvalidState unless connected; waits up to timeout s
//                             for the host's powered-on VMs to go away, else Timedout.
//   ExitMaintenanceMode_Task  InvalidState unless connected.
// Every change goes through hostUpdate, so WaitForUpdatesEx watchers see it.

import (
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

const opsType = "HostSystemOps"

type HostOps struct {
	Self types.ManagedObjectReference
	lab  *Lab
	lh   *labHost
}

func (o *HostOps) Reference() types.ManagedObjectReference { return o.Self }

func registerHostOps(l *Lab) {
	for _, lh := range l.order {
		simulator.Map.Put(&HostOps{Self: types.ManagedObjectReference{Type: opsType, Value: lh.h.Self.Value}, lab: l, lh: lh})
	}
}

func runtimeOf(h *simulator.HostSystem) (types.HostSystemConnectionState, types.HostSystemPowerState, bool) {
	var c types.HostSystemConnectionState
	var p types.HostSystemPowerState
	var mm bool
	withHost(h, func() { c, p, mm = h.Runtime.ConnectionState, h.Runtime.PowerState, h.Runtime.InMaintenanceMode })
	return c, p, mm
}

func invalidState(h *simulator.HostSystem) types.BaseMethodFault {
	return &types.InvalidState{VimFault: types.VimFault{MethodFault: types.MethodFault{
		FaultMessage: []types.LocalizableMessage{{Key: "vcsimlab.invalidState", Message: "host " + h.Name + " is not in a state that allows this"}}}}}
}

func (o *HostOps) ShutdownHostTask(ctx *simulator.Context, req *types.ShutdownHost_Task) soap.HasFault {
	h := o.lh.h
	ref := o.lab.runTask(h, "shutdownHostTask", false, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		c, _, mm := runtimeOf(h)
		if c != types.HostSystemConnectionStateConnected || (!req.Force && !mm) {
			return nil, invalidState(h)
		}
		go func() {
			time.Sleep(o.lab.bootDelay / 2)
			o.lab.powerOff(o.lh)
		}()
		return nil, nil
	})
	return &methods.ShutdownHost_TaskBody{Res: &types.ShutdownHost_TaskResponse{Returnval: ref}}
}

func (o *HostOps) RebootHostTask(ctx *simulator.Context, req *types.RebootHost_Task) soap.HasFault {
	h := o.lh.h
	ref := o.lab.runTask(h, "rebootHostTask", false, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		c, _, mm := runtimeOf(h)
		if c != types.HostSystemConnectionStateConnected || (!req.Force && !mm) {
			return nil, invalidState(h)
		}
		hostUpdate(h,
			types.PropertyChange{Name: "runtime.powerState", Val: types.HostSystemPowerStateUnknown},
			types.PropertyChange{Name: "runtime.connectionState", Val: types.HostSystemConnectionStateNotResponding})
		go func() {
			time.Sleep(o.lab.bootDelay)
			o.lab.powerOn(o.lh)
		}()
		return nil, nil
	})
	return &methods.RebootHost_TaskBody{Res: &types.RebootHost_TaskResponse{Returnval: ref}}
}

// poweredOnVMs counts the host's VMs that are powered on.
func poweredOnVMs(h *simulator.HostSystem) int {
	var refs []types.ManagedObjectReference
	withHost(h, func() { refs = append(refs, h.Vm...) })
	n := 0
	for _, ref := range refs {
		vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
		if !ok {
			continue
		}
		simulator.Map.WithLock(vm, func() {
			if vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn {
				n++
			}
		})
	}
	return n
}

func (o *HostOps) EnterMaintenanceModeTask(ctx *simulator.Context, req *types.EnterMaintenanceMode_Task) soap.HasFault {
	h := o.lh.h
	ref := o.lab.runTask(h, "enterMaintenanceModeTask", req.Timeout > 0, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		if c, _, _ := runtimeOf(h); c != types.HostSystemConnectionStateConnected {
			return nil, invalidState(h)
		}
		deadline := time.Now().Add(time.Duration(req.Timeout) * time.Second)
		for poweredOnVMs(h) > 0 {
			if !time.Now().Before(deadline) {
				return nil, &types.Timedout{}
			}
			time.Sleep(100 * time.Millisecond)
		}
		hostUpdate(h, types.PropertyChange{Name: "runtime.inMaintenanceMode", Val: true})
		postEvent(&types.EnteredMaintenanceModeEvent{HostEvent: types.HostEvent{Event: types.Event{
			Host: hostEventArg(h), FullFormattedMessage: "Host " + h.Name + " in " + "maintenance mode"}}})
		return nil, nil
	})
	return &methods.EnterMaintenanceMode_TaskBody{Res: &types.EnterMaintenanceMode_TaskResponse{Returnval: ref}}
}

func (o *HostOps) ExitMaintenanceModeTask(ctx *simulator.Context, req *types.ExitMaintenanceMode_Task) soap.HasFault {
	h := o.lh.h
	ref := o.lab.runTask(h, "exitMaintenanceModeTask", false, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		if c, _, _ := runtimeOf(h); c != types.HostSystemConnectionStateConnected {
			return nil, invalidState(h)
		}
		hostUpdate(h, types.PropertyChange{Name: "runtime.inMaintenanceMode", Val: false})
		postEvent(&types.ExitMaintenanceModeEvent{HostEvent: types.HostEvent{Event: types.Event{
			Host: hostEventArg(h), FullFormattedMessage: "Host " + h.Name + " exited maintenance mode"}}})
		return nil, nil
	})
	return &methods.ExitMaintenanceMode_TaskBody{Res: &types.ExitMaintenanceMode_TaskResponse{Returnval: ref}}
}

// powerOff is what a shutdown or an out-of-band power-off does to the host's state.
func (l *Lab) powerOff(lh *labHost) {
	hostUpdate(lh.h,
		types.PropertyChange{Name: "runtime.powerState", Val: types.HostSystemPowerStatePoweredOff},
		types.PropertyChange{Name: "runtime.connectionState", Val: types.HostSystemConnectionStateNotResponding})
}

// powerOn boots the host: applies a staged build, new bootTime, connected again.
func (l *Lab) powerOn(lh *labHost) {
	l.mu.Lock()
	staged := lh.staged
	lh.staged = nil
	l.mu.Unlock()
	var changes []types.PropertyChange
	if staged != nil {
		changes = append(changes,
			types.PropertyChange{Name: "config.product.build", Val: staged.Build},
			types.PropertyChange{Name: "config.product.version", Val: staged.Version},
			types.PropertyChange{Name: "config.product.fullName", Val: "VMware ESXi " + staged.Version + " build-" + staged.Build})
	}
	changes = append(changes,
		types.PropertyChange{Name: "summary.rebootRequired", Val: false},
		types.PropertyChange{Name: "runtime.bootTime", Val: time.Now()},
		types.PropertyChange{Name: "runtime.powerState", Val: types.HostSystemPowerStatePoweredOn},
		types.PropertyChange{Name: "runtime.connectionState", Val: types.HostSystemConnectionStateConnected})
	hostUpdate(lh.h, changes...)
}
