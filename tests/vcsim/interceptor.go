package main

// interceptor.go: rewrites `_this type="HostSystem"` to HostSystemOps for the host methods
// hostops.go implements, so vcsim's own dispatcher (auth, faults, encoding) serves them from
// the side object. The example_extend_test.go wrapper pattern breaks HostSystem (vcsim.md §6a).

import (
	"bytes"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/vmware/govmomi/simulator"
)

var hostOpRe = regexp.MustCompile(`(<(?:\w+:)?(?:ShutdownHost_Task|RebootHost_Task|EnterMaintenanceMode_Task|ExitMaintenanceMode_Task)\b[^>]*>\s*<(?:\w+:)?_this\b[^>]*\btype=["'])HostSystem(["'])`)

// installInterceptor wraps the server's handler; call right after NewServer, before any
// client connects (the swap itself is not synchronised).
func installInterceptor(s *simulator.Server) {
	next := s.Config.Handler
	s.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/sdk") {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = hostOpRe.ReplaceAll(body, []byte("${1}"+opsType+"${2}"))
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		next.ServeHTTP(w, r)
	})
}
