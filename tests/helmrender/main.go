// Command helmrender renders a Helm chart's templates as `helm template` does, for tests on machines
// without helm: Go's text/template with sprig's functions (Debian's golang-github-masterminds-sprig-dev,
// the library Helm uses) and Helm's own (include, tpl, required, toYaml, fromYaml, toJson, fromJson,
// lookup), .Values from values.yaml coalesced with each -f file, and .Release, .Chart, .Capabilities
// and .Template filled the way Helm fills them. A missing map key is an error, as with
// `helm lint --strict`, so a misspelt .Values reference fails instead of rendering empty.
// Not implemented: subcharts, toToml, .Files.
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o helmrender ./tests/helmrender
//	helmrender [-name RELEASE] [-namespace NS] [-f values.yaml]... CHART_DIR
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"github.com/ghodss/yaml"
)

// Metadata is Chart.yaml as Helm exposes it in .Chart (helm.sh/helm/v3/pkg/chart.Metadata).
type Metadata struct {
	Name         string            `json:"name"`
	Home         string            `json:"home,omitempty"`
	Sources      []string          `json:"sources,omitempty"`
	Version      string            `json:"version"`
	Description  string            `json:"description,omitempty"`
	Keywords     []string          `json:"keywords,omitempty"`
	Icon         string            `json:"icon,omitempty"`
	APIVersion   string            `json:"apiVersion"`
	Condition    string            `json:"condition,omitempty"`
	Tags         string            `json:"tags,omitempty"`
	AppVersion   string            `json:"appVersion,omitempty"`
	Deprecated   bool              `json:"deprecated,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	KubeVersion  string            `json:"kubeVersion,omitempty"`
	Type         string            `json:"type,omitempty"`
	Dependencies []interface{}     `json:"dependencies,omitempty"`
}

// VersionSet answers .Capabilities.APIVersions.Has as Helm's default set does for these kinds.
type VersionSet []string

func (v VersionSet) Has(apiVersion string) bool {
	for _, known := range v {
		if known == apiVersion {
			return true
		}
	}
	return false
}

type KubeVersion struct{ Version, Major, Minor string }

func (k KubeVersion) String() string { return k.Version }

type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
	HelmVersion map[string]string
}

type valueFiles []string

func (f *valueFiles) String() string     { return strings.Join(*f, ",") }
func (f *valueFiles) Set(v string) error { *f = append(*f, v); return nil }

func readYAML(path string, into interface{}) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// coalesce lays over on top of base as Helm merges -f files onto values.yaml: maps merge key by
// key, anything else replaces, and a null removes the key.
func coalesce(base, over map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(base))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if v == nil {
			delete(out, k)
			continue
		}
		baseMap, baseIsMap := out[k].(map[string]interface{})
		overMap, overIsMap := v.(map[string]interface{})
		if baseIsMap && overIsMap {
			out[k] = coalesce(baseMap, overMap)
		} else {
			out[k] = v
		}
	}
	return out
}

func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func fromYAML(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

// funcMap is Helm's (pkg/engine/funcs.go and engine.go): sprig without env and expandenv, plus
// Helm's functions; include and tpl execute within t.
func funcMap(t *template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	depth := map[string]int{}
	f["toYaml"] = toYAML
	f["fromYaml"] = fromYAML
	f["toJson"] = toJSON
	f["fromJson"] = fromJSON
	f["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil // helm template has no cluster to ask
	}
	f["include"] = func(name string, data interface{}) (string, error) {
		if depth[name] > 1000 {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		depth[name]++
		defer func() { depth[name]-- }()
		var buf strings.Builder
		err := t.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		clone, err := t.Clone()
		if err != nil {
			return "", err
		}
		parsed, err := clone.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf strings.Builder
		err = parsed.Execute(&buf, data)
		return buf.String(), err
	}
	f["required"] = func(message string, value interface{}) (interface{}, error) {
		if value == nil || value == "" {
			return value, errors.New(message)
		}
		return value, nil
	}
	return f
}

func render(chartDir, release, namespace string, files []string) (string, error) {
	var chart Metadata
	if err := readYAML(filepath.Join(chartDir, "Chart.yaml"), &chart); err != nil {
		return "", err
	}
	values := map[string]interface{}{}
	if err := readYAML(filepath.Join(chartDir, "values.yaml"), &values); err != nil {
		return "", err
	}
	for _, file := range files {
		over := map[string]interface{}{}
		if err := readYAML(file, &over); err != nil {
			return "", err
		}
		values = coalesce(values, over)
	}
	paths, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil {
		return "", err
	}
	sort.Strings(paths)
	t := template.New("gotpl").Option("missingkey=error")
	t.Funcs(funcMap(t))
	var names []string
	for _, path := range paths {
		text, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		name := chart.Name + "/templates/" + filepath.Base(path)
		if _, err := t.New(name).Parse(string(text)); err != nil {
			return "", err
		}
		base := filepath.Base(path)
		if !strings.HasPrefix(base, "_") && base != "NOTES.txt" {
			names = append(names, name)
		}
	}
	top := map[string]interface{}{
		"Values": values,
		"Chart":  chart,
		"Release": map[string]interface{}{
			"Name": release, "Namespace": namespace, "IsInstall": true, "IsUpgrade": false,
			"Revision": 1, "Service": "Helm",
		},
		"Capabilities": Capabilities{
			KubeVersion: KubeVersion{"v1.28.0", "1", "28"},
			APIVersions: VersionSet{"v1", "apps/v1", "policy/v1", "monitoring.coreos.com/v1"},
			HelmVersion: map[string]string{"Version": "v3"},
		},
	}
	var out bytes.Buffer
	for _, name := range names {
		top["Template"] = map[string]interface{}{"Name": name, "BasePath": chart.Name + "/templates"}
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, name, top); err != nil {
			return "", err
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if strings.TrimSpace(text) == "" {
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", name, text)
	}
	return out.String(), nil
}

func main() {
	release := flag.String("name", "release-name", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	var files valueFiles
	flag.Var(&files, "f", "values file laid over values.yaml (repeatable)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: helmrender [-name RELEASE] [-namespace NS] [-f values.yaml]... CHART_DIR")
		os.Exit(2)
	}
	out, err := render(flag.Arg(0), *release, *namespace, files)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helmrender:", err)
		os.Exit(1)
	}
	fmt.Print(out)
}
