// Command vcsimlab serves a vCenter model (govmomi 0.24.2 simulator) for esxbot's tests.
//
// Build (Debian golang-go + golang-github-vmware-govmomi-dev, offline):
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o /tmp/vcsimlab .
//
// Run:
//
//	vcsimlab -model model.json -listen 127.0.0.1:0 -cert c.pem -key k.pem -user U -password P
//
// Prints "READY https://HOST:PORT/sdk" on stdout once serving; stops on SIGINT/SIGTERM.
// The model file is described in spec.go, the SOAP additions in hostops.go, patch.go and
// fetchfix.go, the test hooks under /vcsimlab/ in hooks.go.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	modelFile := flag.String("model", "", "JSON model file (see spec.go)")
	clusters := flag.Int("clusters", -1, "clusters (overrides the model file)")
	hostsPer := flag.Int("hosts-per-cluster", -1, "hosts per cluster (overrides the model file)")
	vmsPer := flag.Int("vms-per-cluster", -1, "VMs per cluster (overrides the model file)")
	standalone := flag.Int("standalone-hosts", -1, "standalone hosts (overrides the model file)")
	listen := flag.String("listen", "127.0.0.1:0", "host:port to listen on (port 0 picks a free one)")
	certFile := flag.String("cert", "", "TLS certificate (PEM); plain http without it")
	keyFile := flag.String("key", "", "TLS key (PEM)")
	user := flag.String("user", "administrator@vsphere.local", "the one accepted user")
	password := flag.String("password", "vcsimlab-Pass1!", "the one accepted password")
	bootDelay := flag.Duration("boot-delay", 2*time.Second, "how long a host reboot takes")
	taskDelay := flag.Duration("task-delay", 0, "delay before host tasks run (0: run inline)")
	delayMs := flag.Int("delay-ms", 0, "latency added to every SOAP call")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)

	spec, err := loadModelSpec(*modelFile)
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range []struct{ flag, dst *int }{{clusters, &spec.Clusters}, {hostsPer, &spec.HostsPerCluster},
		{vmsPer, &spec.VMsPerCluster}, {standalone, &spec.StandaloneHosts}} {
		if *o.flag >= 0 {
			*o.dst = *o.flag
		}
	}

	model := simulator.VPX()
	model.Datacenter = 1
	model.Cluster = spec.Clusters
	model.ClusterHost = spec.HostsPerCluster
	model.Host = spec.StandaloneHosts
	model.Machine = spec.VMsPerCluster
	model.Portgroup = 0
	start := time.Now()
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	defer model.Remove()
	model.DelayConfig.Delay = *delayMs

	installFetchFix()
	lab := newLab(*bootDelay, *taskDelay)
	applyModel(lab, spec)
	registerHostOps(lab)
	installPatchManagers(lab)

	mux := http.NewServeMux()
	lab.registerHooks(mux)
	model.Service.ServeMux = mux
	u := &url.URL{Host: *listen}
	u.User = url.UserPassword(*user, *password)
	model.Service.Listen = u
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatal(err)
		}
		model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	s := model.Service.NewServer()
	installInterceptor(s)
	defer s.Close()

	log.Printf("model: %d hosts in %s", len(lab.order), time.Since(start).Round(time.Millisecond))
	ready := *s.URL
	ready.User = nil
	fmt.Printf("READY %s\n", ready.String())
	_ = os.Stdout.Sync()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
