package main

// fetchfix.go: pyvmomi 8+/9 reads lazy attributes with the undocumented SOAP method Fetch.
// vcsim 0.24.2's PropertyCollector.Fetch panics on unset properties (it indexes an empty
// MissingSet), which pyvmomi sees as RemoteDisconnected. FetchFixPC answers Fetch through
// RetrievePropertiesEx instead: unset properties come back as an empty response (None).

import (
	"reflect"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// FetchFixPC must embed PropertyCollector by value as its first field: vcsim finds the mo
// struct through reflect Field(0) and makes per-session collectors with reflect.New.
type FetchFixPC struct{ simulator.PropertyCollector }

// FetchResponse is named like this because vcsim names the XML element after the Res type.
type FetchResponse struct {
	Returnval types.AnyType `xml:"returnval,omitempty,typeattr"`
}

type fetchBody struct {
	Res    *FetchResponse `xml:"FetchResponse,omitempty"`
	Fault_ *soap.Fault    `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault,omitempty"`
}

func (b *fetchBody) Fault() *soap.Fault { return b.Fault_ }

// Fetch takes interface{} because its request type lives in simulator/internal.
func (pc *FetchFixPC) Fetch(ctx *simulator.Context, req interface{}) soap.HasFault {
	rv := reflect.ValueOf(req).Elem()
	this := rv.FieldByName("This").Interface().(types.ManagedObjectReference)
	prop := rv.FieldByName("Prop").String()
	if this.Type == "ServiceInstance" && prop == "content" {
		out := reflect.ValueOf(&pc.PropertyCollector).MethodByName("Fetch").Call(
			[]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(req)})
		return out[0].Interface().(soap.HasFault)
	}
	body := &fetchBody{}
	res := pc.PropertyCollector.RetrievePropertiesEx(ctx, &types.RetrievePropertiesEx{
		SpecSet: []types.PropertyFilterSpec{{
			PropSet:   []types.PropertySpec{{Type: this.Type, PathSet: []string{prop}}},
			ObjectSet: []types.ObjectSpec{{Obj: this}},
		}},
	})
	if f := res.Fault(); f != nil {
		body.Fault_ = f
		return body
	}
	objs := res.(*methods.RetrievePropertiesExBody).Res.Returnval.Objects
	body.Res = &FetchResponse{}
	if len(objs) == 0 {
		return body
	}
	switch o := objs[0]; {
	case len(o.PropSet) > 0:
		body.Res.Returnval = o.PropSet[0].Val
	case len(o.MissingSet) > 0:
		body.Res = nil
		body.Fault_ = simulator.Fault(o.MissingSet[0].Fault.LocalizedMessage, o.MissingSet[0].Fault.Fault)
	}
	return body
}

// installFetchFix replaces the PropertyCollector singleton; call after Create, before NewServer.
func installFetchFix() {
	si := simulator.Map.Get(types.ManagedObjectReference{Type: "ServiceInstance", Value: "ServiceInstance"}).(*simulator.ServiceInstance)
	pc := &FetchFixPC{}
	pc.Self = si.Content.PropertyCollector
	simulator.Map.Put(pc)
}
