package main

// hooks.go: test-only HTTP endpoints (GET or POST, query parameters, JSON answers) that
// change the world behind vCenter's back. Every change goes through hostUpdate/postEvent.
//
//   /vcsimlab/hosts                                 list hosts as JSON
//   /vcsimlab/bootbank-lost?host=H[&device=D]       unmount BOOTBANK*, add a config issue,
//                                                   overallStatus yellow, post GeneralHostErrorEvent
//                                                   "... Bootbank cannot be found at path '/bootbank'"
//   /vcsimlab/bootbank-restored?host=H              mount BOOTBANK* again, drop that issue, green
//   /vcsimlab/connection?host=H&state=S             S: connected | notResponding | disconnected
//   /vcsimlab/power?host=H&state=on|off             out-of-band power (a BMC stand-in)
//   /vcsimlab/event?host=H&type=T&message=M[&severity=S]
//                                                   post an EventEx (type "GeneralHostErrorEvent"
//                                                   posts that event class instead)
//   /vcsimlab/fail-next-patch?host=H[&message=M]    next InstallHostPatchV2_Task on H fails
// Errors: 404 unknown host, 400 bad parameter, each with {"error": "..."}.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

const bootbankIssueType = "vcsimlab.bootdevice.lost" // a lab label, not a real vCenter event id

type hostView struct {
	Name            string   `json:"name"`
	Moref           string   `json:"moref"`
	ConnectionState string   `json:"connection_state"`
	PowerState      string   `json:"power_state"`
	InMaintenance   bool     `json:"in_maintenance"`
	Version         string   `json:"version"`
	Build           string   `json:"build"`
	StagedBuild     *Build   `json:"staged_build"`
	BootbankMounted *bool    `json:"bootbank_mounted"`
	OverallStatus   string   `json:"overall_status"`
	ConfigIssues    []string `json:"config_issues"`
	Tags            []string `json:"tags"`
	VMs             int      `json:"vms"`
}

func writeJSON(w http.ResponseWriter, code int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code int, format string, args ...interface{}) {
	writeJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

func isBootbank(mi types.HostFileSystemMountInfo) bool {
	return mi.Volume != nil && strings.HasPrefix(strings.ToUpper(mi.Volume.GetHostFileSystemVolume().Name), "BOOTBANK")
}

func (l *Lab) view(lh *labHost) hostView {
	h := lh.h
	v := hostView{Tags: lh.tags}
	l.mu.Lock()
	v.StagedBuild = lh.staged
	l.mu.Unlock()
	withHost(h, func() {
		v.Name, v.Moref = h.Name, h.Self.Value
		v.ConnectionState, v.PowerState = string(h.Runtime.ConnectionState), string(h.Runtime.PowerState)
		v.InMaintenance = h.Runtime.InMaintenanceMode
		v.Version, v.Build = h.Config.Product.Version, h.Config.Product.Build
		v.OverallStatus = string(h.OverallStatus)
		v.VMs = len(h.Vm)
		for _, is := range h.ConfigIssue {
			v.ConfigIssues = append(v.ConfigIssues, is.GetEvent().FullFormattedMessage)
		}
		if h.Config.FileSystemVolume != nil {
			for _, mi := range h.Config.FileSystemVolume.MountInfo {
				if isBootbank(mi) {
					ok := mi.MountInfo.Mounted != nil && *mi.MountInfo.Mounted && (v.BootbankMounted == nil || *v.BootbankMounted)
					v.BootbankMounted = &ok
				}
			}
		}
	})
	return v
}

// bootDeviceName guesses the boot device's canonical name for messages.
func bootDeviceName(h *simulator.HostSystem) string {
	name := "the boot device"
	withHost(h, func() {
		for _, a := range h.Config.StorageDevice.HostBusAdapter {
			if hba := a.GetHostHostBusAdapter(); hba.Driver == "vmkusb" {
				name = "mpx." + hba.Device + ":C0:T0:L0"
			}
		}
	})
	return name
}

// setBootbank mounts or unmounts every BOOTBANK volume and sets the config issues and status.
func setBootbank(h *simulator.HostSystem, mounted bool, device string) {
	var mis []types.HostFileSystemMountInfo
	var issues []types.BaseEvent
	withHost(h, func() {
		if h.Config.FileSystemVolume != nil {
			mis = append(mis, h.Config.FileSystemVolume.MountInfo...)
		}
		for _, is := range h.ConfigIssue {
			if ex, ok := is.(*types.EventEx); !ok || ex.EventTypeId != bootbankIssueType {
				issues = append(issues, is)
			}
		}
	})
	for i := range mis {
		if isBootbank(mis[i]) {
			mis[i].MountInfo.Mounted = types.NewBool(mounted)
			mis[i].MountInfo.Accessible = types.NewBool(mounted)
		}
	}
	status := types.ManagedEntityStatusGreen
	if !mounted {
		msg := fmt.Sprintf("Lost connectivity to the device %s backing the boot filesystem /vmfs/devices/disks/%s. "+
			"As a result, host configuration changes will not be saved to persistent storage.", device, device)
		issues = append(issues, &types.EventEx{
			Event:       types.Event{CreatedTime: time.Now(), Host: hostEventArg(h), FullFormattedMessage: msg},
			EventTypeId: bootbankIssueType, Severity: "warning", Message: msg,
			ObjectId: h.Self.Value, ObjectType: "HostSystem", ObjectName: h.Name})
	}
	if len(issues) > 0 {
		status = types.ManagedEntityStatusYellow
	}
	hostUpdate(h,
		types.PropertyChange{Name: "config.fileSystemVolume.mountInfo", Val: mis},
		types.PropertyChange{Name: "configIssue", Val: issues},
		types.PropertyChange{Name: "overallStatus", Val: status})
}

func hostErrorEvent(h *simulator.HostSystem, text string) types.BaseEvent {
	dc := "datacenter"
	if d, ok := simulator.Map.Get(*h.Parent).(*simulator.ClusterComputeResource); ok && d.Parent != nil {
		if f, ok := simulator.Map.Get(*d.Parent).(*simulator.Folder); ok && f.Parent != nil {
			if e, ok := simulator.Map.Get(*f.Parent).(*simulator.Datacenter); ok {
				dc = e.Name
			}
		}
	}
	msg := fmt.Sprintf("Issue detected on %s in %s: %s", h.Name, dc, text)
	return &types.GeneralHostErrorEvent{GeneralEvent: types.GeneralEvent{
		Event: types.Event{CreatedTime: time.Now(), Host: hostEventArg(h), FullFormattedMessage: msg}, Message: msg}}
}

func (l *Lab) registerHooks(mux *http.ServeMux) {
	withHostParam := func(f func(w http.ResponseWriter, r *http.Request, lh *labHost)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			name := r.FormValue("host")
			lh := l.host(name)
			if lh == nil {
				fail(w, http.StatusNotFound, "no host %q", name)
				return
			}
			f(w, r, lh)
		}
	}
	ok := func(w http.ResponseWriter, lh *labHost) { writeJSON(w, http.StatusOK, l.view(lh)) }

	mux.HandleFunc("/vcsimlab/hosts", func(w http.ResponseWriter, r *http.Request) {
		out := make([]hostView, 0, len(l.order))
		for _, lh := range l.order {
			out = append(out, l.view(lh))
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("/vcsimlab/bootbank-lost", withHostParam(func(w http.ResponseWriter, r *http.Request, lh *labHost) {
		device := r.FormValue("device")
		if device == "" {
			device = bootDeviceName(lh.h)
		}
		setBootbank(lh.h, false, device)
		postEvent(hostErrorEvent(lh.h, "Bootbank cannot be found at path '/bootbank'"))
		ok(w, lh)
	}))
	mux.HandleFunc("/vcsimlab/bootbank-restored", withHostParam(func(w http.ResponseWriter, r *http.Request, lh *labHost) {
		setBootbank(lh.h, true, "")
		ok(w, lh)
	}))
	mux.HandleFunc("/vcsimlab/connection", withHostParam(func(w http.ResponseWriter, r *http.Request, lh *labHost) {
		state := types.HostSystemConnectionState(r.FormValue("state"))
		switch state {
		case types.HostSystemConnectionStateConnected, types.HostSystemConnectionStateNotResponding, types.HostSystemConnectionStateDisconnected:
		default:
			fail(w, http.StatusBadRequest, "state must be connected, notResponding or disconnected")
			return
		}
		hostUpdate(lh.h, types.PropertyChange{Name: "runtime.connectionState", Val: state})
		ok(w, lh)
	}))
	mux.HandleFunc("/vcsimlab/power", withHostParam(func(w http.ResponseWriter, r *http.Request, lh *labHost) {
		switch r.FormValue("state") {
		case "on":
			l.powerOn(lh)
		case "off":
			l.powerOff(lh)
		default:
			fail(w, http.StatusBadRequest, "state must be on or off")
			return
		}
		ok(w, lh)
	}))
	mux.HandleFunc("/vcsimlab/event", withHostParam(func(w http.ResponseWriter, r *http.Request, lh *labHost) {
		typ, msg := r.FormValue("type"), r.FormValue("message")
		if typ == "" || msg == "" {
			fail(w, http.StatusBadRequest, "type and message are required")
			return
		}
		if typ == "GeneralHostErrorEvent" {
			postEvent(hostErrorEvent(lh.h, msg))
		} else {
			h := lh.h
			postEvent(&types.EventEx{Event: types.Event{CreatedTime: time.Now(), Host: hostEventArg(h), FullFormattedMessage: msg},
				EventTypeId: typ, Severity: pick(r.FormValue("severity"), "warning"), Message: msg,
				ObjectId: h.Self.Value, ObjectType: "HostSystem", ObjectName: h.Name})
		}
		ok(w, lh)
	}))
	mux.HandleFunc("/vcsimlab/fail-next-patch", withHostParam(func(w http.ResponseWriter, r *http.Request, lh *labHost) {
		l.mu.Lock()
		lh.failNextPatch = pick(r.FormValue("message"), "vcsimlab: injected patch failure")
		l.mu.Unlock()
		ok(w, lh)
	}))
}
