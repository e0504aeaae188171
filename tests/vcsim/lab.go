package main

// lab.go: the lab's own per-host state (staged patch builds, injected faults, tags) and the
// two primitives every state change goes through: hostUpdate (Map.Update under the host lock,
// so WaitForUpdatesEx sees it) and postEvent (EventManager.PostEvent with a system session).

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// Build is an ESXi version/build pair, e.g. a patch staged for the next reboot.
type Build struct {
	Version string `json:"version"`
	Build   string `json:"build"`
}

type labHost struct {
	h             *simulator.HostSystem
	tags          []string
	staged        *Build
	failNextPatch string
}

// Lab holds the hosts by name and the timing knobs of host operations.
type Lab struct {
	mu        sync.Mutex
	byName    map[string]*labHost
	byID      map[string]*labHost
	order     []*labHost
	bootDelay time.Duration
	taskDelay time.Duration
}

func newLab(bootDelay, taskDelay time.Duration) *Lab {
	return &Lab{byName: map[string]*labHost{}, byID: map[string]*labHost{}, bootDelay: bootDelay, taskDelay: taskDelay}
}

func (l *Lab) add(h *simulator.HostSystem, tags []string) {
	lh := &labHost{h: h, tags: tags}
	l.byName[h.Name] = lh
	l.byID[h.Self.Value] = lh
	l.order = append(l.order, lh)
}

func (l *Lab) host(name string) *labHost {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byName[name]
}

// withHost runs f while holding the host's registry lock (for consistent reads).
func withHost(h *simulator.HostSystem, f func()) { simulator.Map.WithLock(h, f) }

// hostUpdate applies and publishes changes. runtime.* changes are also published as
// summary.runtime.* because vcsim matches change names literally against filter paths.
func hostUpdate(h *simulator.HostSystem, changes ...types.PropertyChange) {
	var all []types.PropertyChange
	for _, c := range changes {
		all = append(all, c)
		if strings.HasPrefix(c.Name, "runtime.") {
			all = append(all, types.PropertyChange{Name: "summary." + c.Name, Val: c.Val})
		}
		if strings.HasPrefix(c.Name, "config.product.") {
			all = append(all, types.PropertyChange{Name: "summary." + c.Name, Val: c.Val})
		}
	}
	simulator.Map.WithLock(h, func() { simulator.Map.Update(h, all) })
}

func systemContext() *simulator.Context {
	return &simulator.Context{Context: context.Background(), Map: simulator.Map,
		Session: &simulator.Session{UserSession: types.UserSession{UserName: "vpxd-extension"}}}
}

func postEvent(ev types.BaseEvent) {
	em := simulator.Map.EventManager()
	simulator.Map.WithLock(em, func() { em.PostEvent(systemContext(), &types.PostEvent{EventToPost: ev}) })
}

func hostEventArg(h *simulator.HostSystem) *types.HostEventArgument {
	return &types.HostEventArgument{Host: h.Self, EntityEventArgument: types.EntityEventArgument{Name: h.Name}}
}

// runTask creates a host task; it runs inline (vcsim style) unless async or a task delay is set,
// in which case the caller gets a queued task that completes in the background.
func (l *Lab) runTask(h *simulator.HostSystem, id string, async bool,
	fn func(*simulator.Task) (types.AnyType, types.BaseMethodFault)) types.ManagedObjectReference {
	task := simulator.CreateTask(h, id, fn)
	task.Info.EntityName = h.Name
	if l.taskDelay == 0 && !async {
		return task.Run()
	}
	go func() {
		time.Sleep(l.taskDelay)
		task.Run()
	}()
	return task.Self
}
