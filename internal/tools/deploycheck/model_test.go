// Package deploycheck holds no code, only tests: they check docker-compose.yml,
// the files it mounts (deploy/compose/, deploy/grafana/), Dockerfile and
// .dockerignore against the code, without Docker (none is needed to run them):
// every service, port, healthcheck and mount, the worker configuration (it
// passes config.Load with the environment compose gives it, and names no
// variable compose does not set), the AWS variables (the SDK resolves them to
// LocalStack), Prometheus and Grafana provisioning, and the Dockerfile's build
// (its `go build` line is run with the same flags and the binary must be
// static and start); and deploy/kubernetes (kubernetes_test.go: every
// manifest strictly decoded, the ConfigMap's config loaded with the
// Deployment's environment, probes, ports, grace period, selectors).
package deploycheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// composeFile is the part of the Compose specification this repository uses.
// Decoding is strict (unknown keys fail), so a misspelt key is caught here as
// Compose itself would reject it; a new key needs a field below.
type composeFile struct {
	Name     string               `yaml:"name"`
	Services map[string]*service  `yaml:"services"`
	Volumes  map[string]*struct{} `yaml:"volumes"`
	Networks map[string]*struct{} `yaml:"networks"`
	X        map[string]any       `yaml:",inline"` // x-* extension fields (anchors)
}

type service struct {
	Image           string       `yaml:"image"`
	Build           *buildSpec   `yaml:"build"`
	Command         stringList   `yaml:"command"`
	Entrypoint      stringList   `yaml:"entrypoint"`
	Environment     envMap       `yaml:"environment"`
	EnvFile         stringList   `yaml:"env_file"`
	Ports           []string     `yaml:"ports"`
	Expose          []string     `yaml:"expose"`
	Volumes         []mount      `yaml:"volumes"`
	DependsOn       dependsOn    `yaml:"depends_on"`
	Healthcheck     *healthcheck `yaml:"healthcheck"`
	Deploy          *deploySpec  `yaml:"deploy"`
	Restart         string       `yaml:"restart"`
	StopGracePeriod string       `yaml:"stop_grace_period"`
	User            string       `yaml:"user"`
	Hostname        string       `yaml:"hostname"`
	ContainerName   string       `yaml:"container_name"`
	Profiles        []string     `yaml:"profiles"`
	Labels          envMap       `yaml:"labels"`
	Networks        stringList   `yaml:"networks"`
}

type buildSpec struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

func (b *buildSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	type plain buildSpec
	return n.Decode((*plain)(b))
}

type healthcheck struct {
	Test          stringList `yaml:"test"`
	Interval      string     `yaml:"interval"`
	Timeout       string     `yaml:"timeout"`
	Retries       int        `yaml:"retries"`
	StartPeriod   string     `yaml:"start_period"`
	StartInterval string     `yaml:"start_interval"`
	Disable       bool       `yaml:"disable"`
}

type deploySpec struct {
	Replicas  *int      `yaml:"replicas"`
	Resources yaml.Node `yaml:"resources"`
}

// stringList is a Compose "string or list of strings".
type stringList []string

func (s *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = stringList{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

// envMap is a Compose environment: a mapping, or a list of NAME=value. A name
// without a value (passed through from the host) is an error: the file must
// work the same on every machine.
type envMap map[string]string

func (e *envMap) UnmarshalYAML(n *yaml.Node) error {
	m := envMap{}
	switch n.Kind {
	case yaml.MappingNode:
		var raw map[string]*string
		if err := n.Decode(&raw); err != nil {
			return err
		}
		for k, v := range raw {
			if v == nil {
				return fmt.Errorf("line %d: environment %s has no value: it would be taken from the host; give it one", n.Line, k)
			}
			m[k] = *v
		}
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, kv := range l {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("line %d: environment %s has no value: it would be taken from the host; give it one", n.Line, kv)
			}
			m[k] = v
		}
	default:
		return fmt.Errorf("line %d: environment must be a mapping or a list", n.Line)
	}
	*e = m
	return nil
}

// mount is a volumes entry, short ("src:dst[:mode]") or long syntax.
type mount struct {
	Type     string `yaml:"type"` // bind or volume
	Source   string `yaml:"source"`
	Target   string `yaml:"target"`
	ReadOnly bool   `yaml:"read_only"`
}

func (m *mount) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		type plain mount
		return n.Decode((*plain)(m))
	}
	parts := strings.Split(n.Value, ":")
	switch len(parts) {
	case 1:
		m.Type, m.Target = "volume", parts[0] // anonymous volume
		return nil
	case 2, 3:
		m.Source, m.Target = parts[0], parts[1]
		if len(parts) == 3 {
			for _, opt := range strings.Split(parts[2], ",") {
				if opt == "ro" {
					m.ReadOnly = true
				}
			}
		}
	default:
		return fmt.Errorf("line %d: volume %q: want source:target[:mode]", n.Line, n.Value)
	}
	m.Type = "volume"
	if strings.HasPrefix(m.Source, ".") || strings.HasPrefix(m.Source, "/") || strings.HasPrefix(m.Source, "~") {
		m.Type = "bind"
	}
	return nil
}

// dependsOn is a depends_on list (condition service_started) or mapping.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	m := dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, s := range l {
			m[s] = "service_started"
		}
		*d = m
		return nil
	}
	var raw map[string]struct {
		Condition string `yaml:"condition"`
		Restart   bool   `yaml:"restart"`
		Required  *bool  `yaml:"required"`
	}
	if err := n.Decode(&raw); err != nil {
		return err
	}
	for k, v := range raw {
		c := v.Condition
		if c == "" {
			c = "service_started"
		}
		m[k] = c
	}
	*d = m
	return nil
}

// port is one published port, "[ip:]host:container[/proto]".
type port struct {
	IP        string
	Host      int // 0: not published on the host
	Container int
}

func parsePort(s string) (port, error) {
	s, _, _ = strings.Cut(s, "/")
	parts := strings.Split(s, ":")
	var p port
	var err error
	switch len(parts) {
	case 1:
		p.Container, err = strconv.Atoi(parts[0])
	case 2:
		if p.Host, err = strconv.Atoi(parts[0]); err == nil {
			p.Container, err = strconv.Atoi(parts[1])
		}
	case 3:
		p.IP = parts[0]
		if p.Host, err = strconv.Atoi(parts[1]); err == nil {
			p.Container, err = strconv.Atoi(parts[2])
		}
	default:
		err = fmt.Errorf("too many colons")
	}
	if err != nil {
		return p, fmt.Errorf("port %q: want [ip:]host:container (ranges are not used here): %v", s, err)
	}
	return p, nil
}

// repoRoot is the directory of this module's go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	d, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/kinesis-ingest/kinesis-ingest\n") {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			t.Fatal("go.mod of github.com/kinesis-ingest/kinesis-ingest not found above the working directory")
		}
		d = parent
	}
}

// loadCompose reads docker-compose.yml as `docker compose` would with an
// empty environment and no .env file: ${VAR:-default} takes its default, $$ is
// a literal $. Any other interpolation is an error, so the file works the same
// on every machine.
func loadCompose(t *testing.T, root string) *composeFile {
	t.Helper()
	path := filepath.Join(root, "docker-compose.yml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("docker-compose.yml is not YAML: %v", err)
	}
	var errs []string
	interpolateNode(&doc, &errs)
	if len(errs) > 0 {
		t.Fatalf("docker-compose.yml:\n%s", strings.Join(errs, "\n"))
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(out)))
	dec.KnownFields(true)
	var c composeFile
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for k := range c.X {
		if !strings.HasPrefix(k, "x-") {
			t.Errorf("docker-compose.yml: unknown top-level key %q (extension keys start with x-)", k)
		}
	}
	return &c
}

func interpolateNode(n *yaml.Node, errs *[]string) {
	if n.Kind == yaml.ScalarNode {
		v, err := interpolate(n.Value)
		if err != nil {
			*errs = append(*errs, fmt.Sprintf("line %d: %q: %v", n.Line, n.Value, err))
			return
		}
		n.Value = v
		return
	}
	if n.Kind == yaml.AliasNode {
		return // interpolated where the anchor is
	}
	for _, c := range n.Content {
		interpolateNode(c, errs)
	}
}

var defaultRef = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*):?-([^}]*)\}`)

func interpolate(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' {
			b.WriteByte(s[i])
			i++
			continue
		}
		if strings.HasPrefix(s[i:], "$$") {
			b.WriteByte('$')
			i += 2
			continue
		}
		m := defaultRef.FindStringSubmatch(s[i:])
		if m == nil {
			return "", fmt.Errorf("compose would take %q from the host environment: write ${VAR:-default}, or $$ for a literal $", s[i:])
		}
		b.WriteString(m[2])
		i += len(m[0])
	}
	return b.String(), nil
}
