package main

// patch.go: a HostPatchManager per host (vcsim has none). Bundle/meta URLs name the target
// as "<version>...<build>", e.g. ".../VMware-ESXi-8.0.3-24022510-depot.zip".
//
//   QueryHostPatch_Task       the installed build as one status entry.
//   ScanHostPatchV2_Task      the bundle's build: applicable unless already installed.
//   InstallHostPatchV2_Task   needs maintenance mode; stages the build (applied by the next
//                             reboot), sets summary.rebootRequired; fails once with
//                             PlatformConfigFault after the /vcsimlab/fail-next-patch hook.

import (
	"regexp"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

type PatchManager struct {
	mo.HostPatchManager
	lab *Lab
	lh  *labHost
}

var bundleRe = regexp.MustCompile(`(\d+\.\d+\.\d+)\D+(\d{6,9})`)

func installPatchManagers(l *Lab) {
	for _, lh := range l.order {
		pm := &PatchManager{lab: l, lh: lh}
		pm.Self = types.ManagedObjectReference{Type: "HostPatchManager", Value: "patchManager-" + lh.h.Self.Value}
		simulator.Map.Put(pm)
		ref := pm.Self
		lh.h.ConfigManager.PatchManager = &ref
	}
}

func bundleBuild(urls ...[]string) *Build {
	for _, list := range urls {
		for _, u := range list {
			if m := bundleRe.FindStringSubmatch(u); m != nil {
				return &Build{Version: m[1], Build: m[2]}
			}
		}
	}
	return nil
}

func installed(h *simulator.HostSystem) Build {
	var b Build
	withHost(h, func() { b = Build{Version: h.Config.Product.Version, Build: h.Config.Product.Build} })
	return b
}

func status(b Build, applicable, isInstalled bool) types.HostPatchManagerStatus {
	return types.HostPatchManagerStatus{Id: "ESXi_" + b.Version + "-" + b.Build, Applicable: applicable,
		Installed: isInstalled, RestartRequired: !isInstalled, VmOffRequired: !isInstalled}
}

func invalidBundle() types.BaseMethodFault {
	return &types.PatchMetadataInvalid{}
}

func (pm *PatchManager) QueryHostPatchTask(ctx *simulator.Context, req *types.QueryHostPatch_Task) soap.HasFault {
	h := pm.lh.h
	ref := pm.lab.runTask(h, "queryHostPatchTask", false, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		b := installed(h)
		return types.HostPatchManagerResult{Version: "1.0", Status: []types.HostPatchManagerStatus{status(b, true, true)}}, nil
	})
	return &methods.QueryHostPatch_TaskBody{Res: &types.QueryHostPatch_TaskResponse{Returnval: ref}}
}

func (pm *PatchManager) ScanHostPatchV2Task(ctx *simulator.Context, req *types.ScanHostPatchV2_Task) soap.HasFault {
	h := pm.lh.h
	ref := pm.lab.runTask(h, "scanHostPatchV2Task", false, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		b := bundleBuild(req.BundleUrls, req.MetaUrls)
		if b == nil {
			return nil, invalidBundle()
		}
		done := installed(h).Build == b.Build
		return types.HostPatchManagerResult{Version: "1.0", Status: []types.HostPatchManagerStatus{status(*b, !done, done)}}, nil
	})
	return &methods.ScanHostPatchV2_TaskBody{Res: &types.ScanHostPatchV2_TaskResponse{Returnval: ref}}
}

func (pm *PatchManager) InstallHostPatchV2Task(ctx *simulator.Context, req *types.InstallHostPatchV2_Task) soap.HasFault {
	h := pm.lh.h
	ref := pm.lab.runTask(h, "installHostPatchV2Task", false, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		b := bundleBuild(req.BundleUrls, req.MetaUrls, req.VibUrls)
		if b == nil {
			return nil, invalidBundle()
		}
		if c, _, mm := runtimeOf(h); c != types.HostSystemConnectionStateConnected || !mm {
			return nil, invalidState(h)
		}
		pm.lab.mu.Lock()
		failure := pm.lh.failNextPatch
		pm.lh.failNextPatch = ""
		if failure == "" {
			pm.lh.staged = b
		}
		pm.lab.mu.Unlock()
		if failure != "" {
			return nil, &types.PlatformConfigFault{HostConfigFault: types.HostConfigFault{}, Text: failure}
		}
		hostUpdate(h, types.PropertyChange{Name: "summary.rebootRequired", Val: true})
		return types.HostPatchManagerResult{Version: "1.0", Status: []types.HostPatchManagerStatus{status(*b, true, true)}}, nil
	})
	return &methods.InstallHostPatchV2_TaskBody{Res: &types.InstallHostPatchV2_TaskResponse{Returnval: ref}}
}
