package main

// spec.go: the JSON model file and how it is applied to vcsim's hosts before serving.
//
// Model file (every key optional):
//
//	{"datacenter": "dc1", "clusters": 2, "hosts_per_cluster": 3, "vms_per_cluster": 2,
//	 "standalone_hosts": 0, "cluster_names": ["prod-a", "prod-b"],
//	 "defaults": {HostSpec}, "hosts": [HostSpec, ...]}
//
// "hosts" entries are laid onto the created hosts in order (cluster 0 hosts first, then
// cluster 1, ..., then standalone hosts); fields they leave out come from "defaults", and what
// both leave out keeps vcsim's ESX template. HostSpec keys: name, version, build, full_name,
// api_version, vendor, model, serial, service_tag, hbas [{device, driver, model, type}],
// nics [{device, driver}], volumes [{name, type, device, partition, mounted, accessible}],
// connection_state, power_state, in_maintenance, config_issues [{event_type_id, message,
// severity}], overall_status, tags, vsan, vmotion, sriov, nsx (booleans: the host's vSAN
// configuration, vMotion enabled in the host summary, an SR-IOV-enabled PCI device, an NSX opaque
// switch), datastores [{name, type}] (extra datastores the host mounts, e.g. type "VVOL" or
// "PMEM"). Volume types: "vfat" (bootbanks), "VMFSOS" (OSDATA), "VMFS"; VMFS/VMFSOS volumes with a
// device get an extent on that disk. HBA types: block (default), parallel, fc, iscsi, fcoe, rdma.
// "cluster_settings" [{ha, drs}] set each cluster's HA and DRS in model order.

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

type HBASpec struct {
	Device string `json:"device"`
	Driver string `json:"driver"`
	Model  string `json:"model"`
	Type   string `json:"type"` // block (default), parallel, fc, iscsi, fcoe, rdma
}

type DatastoreSpec struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

type ClusterSpec struct {
	HA  *bool `json:"ha"`
	DRS *bool `json:"drs"`
}

type NICSpec struct {
	Device string `json:"device"`
	Driver string `json:"driver"`
}

type VolumeSpec struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Device     string `json:"device"`
	Partition  int32  `json:"partition"`
	Mounted    *bool  `json:"mounted"`
	Accessible *bool  `json:"accessible"`
}

type IssueSpec struct {
	EventTypeID string `json:"event_type_id"`
	Message     string `json:"message"`
	Severity    string `json:"severity"`
}

type HostSpec struct {
	Name            string          `json:"name"`
	Version         string          `json:"version"`
	Build           string          `json:"build"`
	FullName        string          `json:"full_name"`
	APIVersion      string          `json:"api_version"`
	Vendor          string          `json:"vendor"`
	Model           string          `json:"model"`
	Serial          string          `json:"serial"`
	ServiceTag      string          `json:"service_tag"`
	HBAs            []HBASpec       `json:"hbas"`
	NICs            []NICSpec       `json:"nics"`
	Volumes         []VolumeSpec    `json:"volumes"`
	ConnectionState string          `json:"connection_state"`
	PowerState      string          `json:"power_state"`
	InMaintenance   *bool           `json:"in_maintenance"`
	ConfigIssues    []IssueSpec     `json:"config_issues"`
	OverallStatus   string          `json:"overall_status"`
	Tags            []string        `json:"tags"`
	VSAN            *bool           `json:"vsan"`
	VMotion         *bool           `json:"vmotion"`
	SRIOV           *bool           `json:"sriov"`
	NSX             *bool           `json:"nsx"`
	Datastores      []DatastoreSpec `json:"datastores"`
}

type ModelSpec struct {
	Datacenter      string        `json:"datacenter"`
	Clusters        int           `json:"clusters"`
	HostsPerCluster int           `json:"hosts_per_cluster"`
	VMsPerCluster   int           `json:"vms_per_cluster"`
	StandaloneHosts int           `json:"standalone_hosts"`
	ClusterNames    []string      `json:"cluster_names"`
	ClusterSettings []ClusterSpec `json:"cluster_settings"`
	Defaults        HostSpec      `json:"defaults"`
	Hosts           []HostSpec    `json:"hosts"`
}

func loadModelSpec(path string) (*ModelSpec, error) {
	spec := &ModelSpec{Clusters: 1, HostsPerCluster: 3}
	if path == "" {
		return spec, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(spec); err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	return spec, nil
}

func pick(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// merge returns h with the fields it leaves empty taken from d.
func merge(d, h HostSpec) HostSpec {
	out := h
	out.Version = pick(h.Version, d.Version)
	out.Build = pick(h.Build, d.Build)
	out.FullName = pick(h.FullName, d.FullName)
	out.APIVersion = pick(h.APIVersion, d.APIVersion)
	out.Vendor = pick(h.Vendor, d.Vendor)
	out.Model = pick(h.Model, d.Model)
	out.Serial = pick(h.Serial, d.Serial)
	out.ServiceTag = pick(h.ServiceTag, d.ServiceTag)
	out.ConnectionState = pick(h.ConnectionState, d.ConnectionState)
	out.PowerState = pick(h.PowerState, d.PowerState)
	out.OverallStatus = pick(h.OverallStatus, d.OverallStatus)
	if h.HBAs == nil {
		out.HBAs = d.HBAs
	}
	if h.NICs == nil {
		out.NICs = d.NICs
	}
	if h.Volumes == nil {
		out.Volumes = d.Volumes
	}
	if h.ConfigIssues == nil {
		out.ConfigIssues = d.ConfigIssues
	}
	if h.Tags == nil {
		out.Tags = d.Tags
	}
	if h.InMaintenance == nil {
		out.InMaintenance = d.InMaintenance
	}
	for _, f := range []struct{ dst, src **bool }{{&out.VSAN, &d.VSAN}, {&out.VMotion, &d.VMotion},
		{&out.SRIOV, &d.SRIOV}, {&out.NSX, &d.NSX}} {
		if *f.dst == nil {
			*f.dst = *f.src
		}
	}
	if h.Datastores == nil {
		out.Datastores = d.Datastores
	}
	return out
}

// byNatural orders vcsim names such as DC0_C2 before DC0_C10.
func byNatural(names []string) func(i, j int) bool {
	return func(i, j int) bool {
		if len(names[i]) != len(names[j]) {
			return len(names[i]) < len(names[j])
		}
		return names[i] < names[j]
	}
}

// orderedHosts lists hosts in model order: each cluster's hosts in order, then standalone hosts.
func orderedHosts() ([]*simulator.ClusterComputeResource, []*simulator.HostSystem) {
	var clusters []*simulator.ClusterComputeResource
	for _, e := range simulator.Map.All("ClusterComputeResource") {
		clusters = append(clusters, e.(*simulator.ClusterComputeResource))
	}
	names := make([]string, len(clusters))
	for i, c := range clusters {
		names[i] = c.Name
	}
	idx := make([]int, len(clusters))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return byNatural(names)(idx[a], idx[b]) })
	sorted := make([]*simulator.ClusterComputeResource, len(clusters))
	var hosts []*simulator.HostSystem
	seen := map[string]bool{}
	for i, k := range idx {
		sorted[i] = clusters[k]
		for _, ref := range clusters[k].Host {
			hosts = append(hosts, simulator.Map.Get(ref).(*simulator.HostSystem))
			seen[ref.Value] = true
		}
	}
	var standalone []*simulator.HostSystem
	var snames []string
	for _, e := range simulator.Map.All("HostSystem") {
		h := e.(*simulator.HostSystem)
		if !seen[h.Self.Value] {
			standalone = append(standalone, h)
			snames = append(snames, h.Name)
		}
	}
	sort.Slice(standalone, func(a, b int) bool {
		if len(standalone[a].Name) != len(standalone[b].Name) {
			return len(standalone[a].Name) < len(standalone[b].Name)
		}
		return standalone[a].Name < standalone[b].Name
	})
	return sorted, append(hosts, standalone...)
}

func hbaFor(s HBASpec) types.BaseHostHostBusAdapter {
	base := types.HostHostBusAdapter{Key: "key-vim.host.BlockHba-" + s.Device, Device: s.Device,
		Status: "online", Model: s.Model, Driver: s.Driver}
	switch s.Type {
	case "parallel":
		base.Key = "key-vim.host.ParallelScsiHba-" + s.Device
		return &types.HostParallelScsiHba{HostHostBusAdapter: base}
	case "fc":
		base.Key = "key-vim.host.FibreChannelHba-" + s.Device
		return &types.HostFibreChannelHba{HostHostBusAdapter: base, PortType: "fabric"}
	case "iscsi":
		base.Key = "key-vim.host.InternetScsiHba-" + s.Device
		return &types.HostInternetScsiHba{HostHostBusAdapter: base}
	case "fcoe":
		base.Key = "key-vim.host.FibreChannelOverEthernetHba-" + s.Device
		return &types.HostFibreChannelOverEthernetHba{HostFibreChannelHba: types.HostFibreChannelHba{
			HostHostBusAdapter: base, PortType: "fabric"}}
	case "rdma":
		base.Key = "key-vim.host.RdmaHba-" + s.Device
		return &types.HostRdmaHba{HostHostBusAdapter: base}
	}
	return &types.HostBlockHba{HostHostBusAdapter: base}
}

func boolOr(p *bool, d bool) *bool {
	if p != nil {
		return types.NewBool(*p)
	}
	return types.NewBool(d)
}

func volumeFor(i int, hostID string, v VolumeSpec) types.HostFileSystemMountInfo {
	uuid := fmt.Sprintf("%08x-%s-%04d", i+1, hostID, i)
	mounted := boolOr(v.Mounted, true)
	mi := types.HostMountInfo{Path: "/vmfs/volumes/" + uuid, AccessMode: "readWrite",
		Mounted: mounted, Accessible: boolOr(v.Accessible, *mounted)}
	fs := types.HostFileSystemVolume{Type: v.Type, Name: v.Name, Capacity: 4293591040}
	var vol types.BaseHostFileSystemVolume
	switch v.Type {
	case "vfat":
		vol = &types.HostVfatVolume{HostFileSystemVolume: fs}
	case "VMFS", "VMFSOS", "VMFS-L":
		fs.Capacity = 137438953472
		vmfs := &types.HostVmfsVolume{HostFileSystemVolume: fs, Uuid: uuid, Version: "6.82", MajorVersion: 6,
			BlockSizeMb: 1, Local: types.NewBool(true)}
		if v.Device != "" {
			vmfs.Extent = []types.HostScsiDiskPartition{{DiskName: v.Device, Partition: v.Partition}}
		}
		vol = vmfs
	default:
		vol = &fs
	}
	return types.HostFileSystemMountInfo{MountInfo: mi, Volume: vol}
}

func issueFor(h *simulator.HostSystem, s IssueSpec) types.BaseEvent {
	return &types.EventEx{
		Event: types.Event{CreatedTime: *h.Runtime.BootTime, FullFormattedMessage: s.Message,
			Host: &types.HostEventArgument{Host: h.Self, EntityEventArgument: types.EntityEventArgument{Name: h.Name}}},
		EventTypeId: s.EventTypeID, Severity: pick(s.Severity, "warning"),
		ObjectId: h.Self.Value, ObjectType: "HostSystem", ObjectName: h.Name, Message: s.Message,
	}
}

// applyHost writes one spec into a host; only valid before the server starts.
func applyHost(h *simulator.HostSystem, s HostSpec) {
	if s.Name != "" {
		h.Name = s.Name
		h.Summary.Config.Name = s.Name
	}
	p := h.Config.Product // copy: summary.config.product is shared by every host in the template
	if s.Version != "" {
		p.Version = s.Version
	}
	if s.Build != "" {
		p.Build = s.Build
	}
	p.ApiVersion = pick(s.APIVersion, p.ApiVersion)
	if s.FullName != "" {
		p.FullName = s.FullName
	} else if s.Version != "" || s.Build != "" {
		p.FullName = fmt.Sprintf("VMware ESXi %s build-%s", p.Version, p.Build)
	}
	h.Config.Product = p
	h.Summary.Config.Product = &h.Config.Product

	h.Hardware.SystemInfo.OtherIdentifyingInfo = nil
	if s.Vendor != "" {
		h.Hardware.SystemInfo.Vendor = s.Vendor
		h.Summary.Hardware.Vendor = s.Vendor
	}
	if s.Model != "" {
		h.Hardware.SystemInfo.Model = s.Model
		h.Summary.Hardware.Model = s.Model
	}
	h.Hardware.SystemInfo.SerialNumber = s.Serial
	if s.ServiceTag != "" {
		h.Hardware.SystemInfo.OtherIdentifyingInfo = []types.HostSystemIdentificationInfo{{
			IdentifierValue: s.ServiceTag,
			IdentifierType:  &types.ElementDescription{Description: types.Description{Label: "Service tag", Summary: "Service tag"}, Key: "ServiceTag"},
		}}
	}
	if s.HBAs != nil {
		hbas := make([]types.BaseHostHostBusAdapter, 0, len(s.HBAs))
		for _, a := range s.HBAs {
			hbas = append(hbas, hbaFor(a))
		}
		sd := *h.Config.StorageDevice
		sd.HostBusAdapter = hbas
		h.Config.StorageDevice = &sd
	}
	if s.NICs != nil {
		nw := *h.Config.Network
		nw.Pnic = nil
		for _, n := range s.NICs {
			nw.Pnic = append(nw.Pnic, types.PhysicalNic{Key: "key-vim.host.PhysicalNic-" + n.Device, Device: n.Device,
				Pci: "0000:0b:00.0", Driver: n.Driver})
		}
		h.Config.Network = &nw
	}
	if s.Volumes != nil {
		info := &types.HostFileSystemVolumeInfo{VolumeTypeList: []string{"VMFS", "NFS", "vfat", "VMFSOS"}}
		for i, v := range s.Volumes {
			info.MountInfo = append(info.MountInfo, volumeFor(i, h.Self.Value, v))
		}
		h.Config.FileSystemVolume = info
	}
	if s.ConnectionState != "" {
		h.Runtime.ConnectionState = types.HostSystemConnectionState(s.ConnectionState)
	}
	if s.PowerState != "" {
		h.Runtime.PowerState = types.HostSystemPowerState(s.PowerState)
	}
	if s.InMaintenance != nil {
		h.Runtime.InMaintenanceMode = *s.InMaintenance
	}
	h.ConfigIssue = nil
	for _, is := range s.ConfigIssues {
		h.ConfigIssue = append(h.ConfigIssue, issueFor(h, is))
	}
	applyFeatures(h, s)
	h.OverallStatus = types.ManagedEntityStatusGreen
	if s.OverallStatus != "" {
		h.OverallStatus = types.ManagedEntityStatus(s.OverallStatus)
	} else if len(h.ConfigIssue) > 0 {
		h.OverallStatus = types.ManagedEntityStatusYellow
	}
}

// applyModel renames the datacenter and clusters and applies every host spec.
func applyModel(l *Lab, spec *ModelSpec) {
	if spec.Datacenter != "" {
		for _, e := range simulator.Map.All("Datacenter") {
			e.(*simulator.Datacenter).Name = spec.Datacenter
		}
	}
	clusters, hosts := orderedHosts()
	for i, c := range clusters {
		if i < len(spec.ClusterNames) {
			c.Name = spec.ClusterNames[i]
		}
		if i < len(spec.ClusterSettings) {
			applyCluster(c, spec.ClusterSettings[i])
		}
	}
	for i, h := range hosts {
		s := spec.Defaults
		if i < len(spec.Hosts) {
			s = merge(spec.Defaults, spec.Hosts[i])
		}
		applyHost(h, s)
		l.add(h, s.Tags)
	}
}

// applyFeatures writes the facts esxbot reads for vSAN, vMotion, SR-IOV, NSX and datastore types.
func applyFeatures(h *simulator.HostSystem, s HostSpec) {
	if s.VSAN != nil {
		vsan := *h.Config.VsanHostConfig
		vsan.Enabled = types.NewBool(*s.VSAN)
		h.Config.VsanHostConfig = &vsan
	}
	if s.VMotion != nil {
		h.Summary.Config.VmotionEnabled = *s.VMotion
	}
	if s.SRIOV != nil {
		h.Config.PciPassthruInfo = []types.BaseHostPciPassthruInfo{&types.HostSriovInfo{
			HostPciPassthruInfo: types.HostPciPassthruInfo{Id: "0000:3b:00.0", DependentDevice: "0000:3b:00.0",
				PassthruEnabled: false, PassthruCapable: true},
			SriovEnabled: *s.SRIOV, SriovCapable: true, SriovActive: *s.SRIOV, NumVirtualFunction: 8,
			MaxVirtualFunctionSupported: 64}}
	}
	if s.NSX != nil {
		nw := *h.Config.Network
		nw.OpaqueSwitch = nil
		if *s.NSX {
			nw.OpaqueSwitch = []types.HostOpaqueSwitch{{Key: "nvds-" + h.Self.Value, Name: "nsx-overlay"}}
		}
		h.Config.Network = &nw
	}
	for _, d := range s.Datastores {
		addDatastore(h, d)
	}
}

// addDatastore registers a datastore of the given type, mounted on h only, in its datacenter's folder.
func addDatastore(h *simulator.HostSystem, d DatastoreSpec) {
	ds := &simulator.Datastore{}
	ds.Self = types.ManagedObjectReference{Type: "Datastore", Value: "datastore-" + d.Name}
	ds.Name = d.Name
	url := "ds:///vmfs/volumes/" + d.Name + "/"
	ds.Info = &types.DatastoreInfo{Name: d.Name, Url: url}
	ds.Summary = types.DatastoreSummary{Datastore: &ds.Self, Name: d.Name, Url: url, Type: d.Type,
		Capacity: 1 << 40, FreeSpace: 1 << 39, Accessible: true, MaintenanceMode: "normal"}
	ds.Host = []types.DatastoreHostMount{{Key: h.Self, MountInfo: types.HostMountInfo{Path: "/vmfs/volumes/" + d.Name,
		AccessMode: "readWrite", Mounted: types.NewBool(true), Accessible: types.NewBool(true)}}}
	for _, e := range simulator.Map.All("Datacenter") {
		folder := simulator.Map.Get(e.(*simulator.Datacenter).DatastoreFolder).(*simulator.Folder)
		folder.ChildEntity = append(folder.ChildEntity, ds.Self)
		simulator.Map.PutEntity(folder, ds)
		break
	}
	h.Datastore = append(append([]types.ManagedObjectReference(nil), h.Datastore...), ds.Self)
}

// applyCluster sets a cluster's HA and DRS in both its configuration and configurationEx.
func applyCluster(c *simulator.ClusterComputeResource, s ClusterSpec) {
	ex, _ := c.ConfigurationEx.(*types.ClusterConfigInfoEx)
	if s.HA != nil {
		c.Configuration.DasConfig.Enabled = types.NewBool(*s.HA)
		if ex != nil {
			ex.DasConfig.Enabled = types.NewBool(*s.HA)
		}
	}
	if s.DRS != nil {
		c.Configuration.DrsConfig.Enabled = types.NewBool(*s.DRS)
		if ex != nil {
			ex.DrsConfig.Enabled = types.NewBool(*s.DRS)
		}
	}
}
