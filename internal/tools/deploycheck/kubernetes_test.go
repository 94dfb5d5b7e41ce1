package deploycheck

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
)

// The Kubernetes manifests cannot run here (no cluster), so, as for compose,
// the test reads them as the API server would (each object strictly decoded
// into the fields we use: a misspelt field fails) and checks them against the
// code: the config they mount loads with the environment they give it, the
// probes and the ServiceMonitor hit the paths and port the worker serves, the
// grace period outlasts the drain, the selectors select the pods.

const kubeDir = "deploy/kubernetes"

// k8sObject is the part every manifest has.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// intOrString is a port given by number or by name.
type intOrString struct{ s string }

func (p *intOrString) UnmarshalYAML(n *yaml.Node) error { p.s = n.Value; return nil }

type httpGet struct {
	Path string      `yaml:"path"`
	Port intOrString `yaml:"port"`
}

type probe struct {
	HTTPGet             *httpGet `yaml:"httpGet"`
	PeriodSeconds       int      `yaml:"periodSeconds"`
	FailureThreshold    int      `yaml:"failureThreshold"`
	InitialDelaySeconds int      `yaml:"initialDelaySeconds"`
	TimeoutSeconds      int      `yaml:"timeoutSeconds"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		FieldRef *struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []envVar `yaml:"env"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	} `yaml:"ports"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	StartupProbe   *probe `yaml:"startupProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type deployment struct {
	k8sObject `yaml:",inline"`
	Spec      struct {
		Replicas int           `yaml:"replicas"`
		Selector labelSelector `yaml:"selector"`
		Strategy struct {
			Type          string `yaml:"type"`
			RollingUpdate struct {
				MaxUnavailable intOrString `yaml:"maxUnavailable"`
				MaxSurge       intOrString `yaml:"maxSurge"`
			} `yaml:"rollingUpdate"`
		} `yaml:"strategy"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				ServiceAccountName            string `yaml:"serviceAccountName"`
				TerminationGracePeriodSeconds *int   `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot   bool `yaml:"runAsNonRoot"`
					RunAsUser      int  `yaml:"runAsUser"`
					RunAsGroup     int  `yaml:"runAsGroup"`
					SeccompProfile struct {
						Type string `yaml:"type"`
					} `yaml:"seccompProfile"`
				} `yaml:"securityContext"`
				TopologySpreadConstraints []struct {
					MaxSkew           int           `yaml:"maxSkew"`
					TopologyKey       string        `yaml:"topologyKey"`
					WhenUnsatisfiable string        `yaml:"whenUnsatisfiable"`
					LabelSelector     labelSelector `yaml:"labelSelector"`
				} `yaml:"topologySpreadConstraints"`
				Containers []container `yaml:"containers"`
				Volumes    []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name  string `yaml:"name"`
						Items []struct {
							Key  string `yaml:"key"`
							Path string `yaml:"path"`
						} `yaml:"items"`
					} `yaml:"configMap"`
					EmptyDir              map[string]any `yaml:"emptyDir"`
					PersistentVolumeClaim map[string]any `yaml:"persistentVolumeClaim"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type configMap struct {
	k8sObject `yaml:",inline"`
	Data      map[string]string `yaml:"data"`
}

type kubeService struct {
	k8sObject `yaml:",inline"`
	Spec      struct {
		Type     string            `yaml:"type"`
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string      `yaml:"name"`
			Port       int         `yaml:"port"`
			TargetPort intOrString `yaml:"targetPort"`
			Protocol   string      `yaml:"protocol"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type serviceMonitor struct {
	k8sObject `yaml:",inline"`
	Spec      struct {
		Selector  labelSelector `yaml:"selector"`
		Endpoints []struct {
			Port     string              `yaml:"port"`
			Path     string              `yaml:"path"`
			Interval string              `yaml:"interval"`
			Params   map[string][]string `yaml:"params"`
		} `yaml:"endpoints"`
	} `yaml:"spec"`
}

type podDisruptionBudget struct {
	k8sObject `yaml:",inline"`
	Spec      struct {
		MaxUnavailable *intOrString  `yaml:"maxUnavailable"`
		MinAvailable   *intOrString  `yaml:"minAvailable"`
		Selector       labelSelector `yaml:"selector"`
	} `yaml:"spec"`
}

type kustomization struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Labels     []struct {
		Pairs map[string]string `yaml:"pairs"`
	} `yaml:"labels"`
	Resources []string `yaml:"resources"`
	Images    []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"`
}

// kube is every object of deploy/kubernetes, by kind.
type kube struct {
	deployment     *deployment
	configMaps     map[string]*configMap
	services       []*kubeService
	serviceMonitor *serviceMonitor
	pdb            *podDisruptionBudget
	serviceAccount map[string]*k8sObject
	files          []string // manifest files, relative to kubeDir
}

// The API version each kind must have.
var kubeKinds = map[string]string{
	"Deployment":          "apps/v1",
	"ConfigMap":           "v1",
	"Service":             "v1",
	"ServiceAccount":      "v1",
	"PodDisruptionBudget": "policy/v1",
	"ServiceMonitor":      "monitoring.coreos.com/v1",
}

// strict decodes n into v, failing on fields v does not have.
func strict(n *yaml.Node, v any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

func loadKube(t *testing.T, root string) *kube {
	t.Helper()
	k := &kube{configMaps: map[string]*configMap{}, serviceAccount: map[string]*k8sObject{}}
	files, _ := filepath.Glob(filepath.Join(root, kubeDir, "*.yaml"))
	if len(files) == 0 {
		t.Fatalf("no manifests in %s", kubeDir)
	}
	for _, f := range files {
		base := filepath.Base(f)
		if base == "kustomization.yaml" {
			continue
		}
		k.files = append(k.files, base)
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var doc yaml.Node
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: not YAML: %v", base, err)
			}
			var obj k8sObject
			if err := doc.Decode(&obj); err != nil {
				t.Fatalf("%s[%d]: %v", base, i, err)
			}
			where := fmt.Sprintf("%s: %s %s", base, obj.Kind, obj.Metadata.Name)
			if want, ok := kubeKinds[obj.Kind]; !ok {
				t.Errorf("%s: kind %q is not one this test checks", where, obj.Kind)
				continue
			} else if obj.APIVersion != want {
				t.Errorf("%s: apiVersion %q, want %q", where, obj.APIVersion, want)
			}
			if obj.Metadata.Name == "" {
				t.Errorf("%s: no metadata.name", where)
			}
			var v any
			switch obj.Kind {
			case "Deployment":
				if k.deployment != nil {
					t.Errorf("%s: a second Deployment", where)
				}
				k.deployment = &deployment{}
				v = k.deployment
			case "ConfigMap":
				cm := &configMap{}
				k.configMaps[obj.Metadata.Name] = cm
				v = cm
			case "Service":
				s := &kubeService{}
				k.services = append(k.services, s)
				v = s
			case "ServiceMonitor":
				k.serviceMonitor = &serviceMonitor{}
				v = k.serviceMonitor
			case "PodDisruptionBudget":
				k.pdb = &podDisruptionBudget{}
				v = k.pdb
			case "ServiceAccount":
				sa := &k8sObject{}
				k.serviceAccount[obj.Metadata.Name] = sa
				v = sa
			}
			if err := strict(&doc, v); err != nil {
				t.Errorf("%s: %v", where, err)
			}
		}
	}
	if k.deployment == nil || k.serviceMonitor == nil || k.pdb == nil || len(k.services) == 0 || len(k.configMaps) == 0 || len(k.serviceAccount) == 0 {
		t.Fatalf("%s needs a Deployment, a ConfigMap, a Service, a ServiceMonitor, a PodDisruptionBudget and a ServiceAccount", kubeDir)
	}
	return k
}

// selects reports whether a selector's labels all appear in labels.
func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestKubernetesKustomization: `kubectl apply -k` applies every manifest.
func TestKubernetesKustomization(t *testing.T) {
	root := repoRoot(t)
	k := loadKube(t, root)
	var kz kustomization
	var n yaml.Node
	readYAML(t, filepath.Join(root, kubeDir, "kustomization.yaml"), &n)
	if err := strict(&n, &kz); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if kz.APIVersion != "kustomize.config.k8s.io/v1beta1" || kz.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml: %s %s", kz.APIVersion, kz.Kind)
	}
	got, want := slices.Sorted(slices.Values(kz.Resources)), slices.Sorted(slices.Values(k.files))
	if !slices.Equal(got, want) {
		t.Errorf("kustomization.yaml resources %q, want every manifest of %s: %q", got, kubeDir, want)
	}
	img := k.deployment.Spec.Template.Spec.Containers[0].Image
	found := false
	for _, i := range kz.Images {
		if i.Name != img {
			continue
		}
		found = true
		if i.NewTag == "" || i.NewTag == "latest" {
			t.Errorf("kustomization.yaml: image %s has tag %q: pin one, so a rollout means one build", img, i.NewTag)
		}
	}
	if !found {
		t.Errorf("kustomization.yaml: no images entry for the Deployment's image %q (users set theirs there)", img)
	}
}

// kubeWorker is the Deployment's worker container, its config and the
// environment Kubernetes gives it.
type kubeWorker struct {
	c      *container
	cfg    *config.Config
	raw    string            // the config as mounted
	env    map[string]string // as the pod would see it
	listen string
}

// podName is what the downward API gives metadata.name: a Deployment's pod
// name, <deployment>-<replicaset hash>-<5 chars>.
const podName = "kinesis-ingest-7c9d8f6b5d-x2k4q"

func loadKubeWorker(t *testing.T, root string, k *kube) *kubeWorker {
	t.Helper()
	spec := &k.deployment.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("Deployment: %d containers, want the worker alone", len(spec.Containers))
	}
	c := &spec.Containers[0]
	if len(c.Command) > 0 {
		t.Errorf("container %s sets command %q: the image's ENTRYPOINT is the binary; give args only", c.Name, c.Command)
	}
	args := c.Args
	if len(args) == 0 {
		args = parseDockerfile(t, filepath.Join(root, "Dockerfile")).final().execForm("CMD")
	}
	i := slices.Index(args, "--config")
	if len(args) < 3 || args[0] != "run" || i < 0 || i+1 >= len(args) {
		t.Fatalf("container args %q: want run --config FILE", args)
	}
	target := args[i+1]

	// The config file comes from a ConfigMap volume mounted at its directory.
	var raw string
	for _, m := range c.VolumeMounts {
		if m.MountPath != path.Dir(target) {
			continue
		}
		if !m.ReadOnly {
			t.Errorf("config volume %s is mounted writable", m.Name)
		}
		for _, v := range spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			key := path.Base(target)
			for _, it := range v.ConfigMap.Items {
				if it.Path == key {
					key = it.Key
				}
			}
			cm := k.configMaps[v.ConfigMap.Name]
			if cm == nil {
				t.Fatalf("volume %s mounts ConfigMap %q, which is not among the manifests", v.Name, v.ConfigMap.Name)
			}
			var ok bool
			if raw, ok = cm.Data[key]; !ok {
				t.Fatalf("ConfigMap %s has no key %q for %s", v.ConfigMap.Name, key, target)
			}
		}
	}
	if raw == "" {
		t.Fatalf("the worker runs with --config %s, but no ConfigMap volume is mounted at %s", target, path.Dir(target))
	}

	// The environment: values as given, the pod's name from the downward API,
	// secrets as a placeholder of the right form.
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			env[e.Name] = podName
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "postgres://ingest:secret@postgres.example:5432/kinesis"
		default:
			t.Errorf("env %s: valueFrom this test does not model", e.Name)
		}
		if strings.HasPrefix(e.Name, "AWS_ACCESS_KEY_ID") || strings.HasPrefix(e.Name, "AWS_SECRET_ACCESS_KEY") || strings.HasPrefix(e.Name, "AWS_ENDPOINT_URL") {
			t.Errorf("env %s: on Kubernetes the credentials come from the service account's role (IRSA) and the endpoints from the stream's region", e.Name)
		}
	}
	for _, name := range configEnvRefs(raw) {
		if _, ok := env[name]; !ok {
			t.Errorf("the config uses ${%s}, which the container does not set", name)
		}
	}
	file := filepath.Join(t.TempDir(), path.Base(target))
	if err := os.WriteFile(file, []byte(raw), 0o644); err != nil {
		t.Fatal(err)
	}
	setEnv(t, env)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatalf("the ConfigMap's config with the container's environment: %v", err)
	}
	for _, w := range cfg.Warnings {
		t.Errorf("config warning: %s", w)
	}
	return &kubeWorker{c: c, cfg: cfg, raw: raw, env: env, listen: cfg.Metrics.Listen}
}

// TestKubernetesDeployment checks the Deployment against the worker and its
// config: ids, probes, ports, the grace period, the user, the volumes.
func TestKubernetesDeployment(t *testing.T) {
	root := repoRoot(t)
	k := loadKube(t, root)
	w := loadKubeWorker(t, root, k)
	d := k.deployment
	spec := &d.Spec.Template.Spec

	if d.Spec.Replicas < 2 {
		t.Errorf("replicas %d: want at least 2, so a worker's shards have somewhere to go", d.Spec.Replicas)
	}
	if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) {
		t.Errorf("the Deployment's selector %v does not select its pods %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels)
	}
	if k.serviceAccount[spec.ServiceAccountName] == nil {
		t.Errorf("serviceAccountName %q is not among the manifests", spec.ServiceAccountName)
	}

	// Each replica a worker id of its own: the pod's name.
	id := w.cfg.Consumer.WorkerID
	if id != podName {
		t.Errorf("consumer.worker_id is %q with the pod's environment; want the pod name (the downward API's metadata.name) so replicas never share an id", id)
	}

	// The drain fits in the grace period, with room to release the leases.
	grace := 30
	if g := spec.TerminationGracePeriodSeconds; g != nil {
		grace = *g
	}
	if st := w.cfg.Consumer.ShutdownTimeout.Seconds(); float64(grace) < st+5 {
		t.Errorf("terminationGracePeriodSeconds %d: want at least consumer.shutdown_timeout (%gs) + 5s, so a stopping worker drains, checkpoints and releases its leases before SIGKILL", grace, st)
	}

	// Probes on the worker's own paths and port.
	host, port, err := net.SplitHostPort(w.listen)
	if err != nil || (host != "0.0.0.0" && host != "" && host != "::") || port == "0" {
		t.Fatalf("metrics.listen %q: want 0.0.0.0:PORT, so the kubelet and Prometheus reach it", w.listen)
	}
	portNames := map[string]string{}
	for _, p := range w.c.Ports {
		portNames[p.Name] = strconv.Itoa(p.ContainerPort)
		if strconv.Itoa(p.ContainerPort) == port && p.Name != "metrics" {
			t.Errorf("containerPort %d is named %q, want metrics (the Service and ServiceMonitor name it)", p.ContainerPort, p.Name)
		}
	}
	if portNames["metrics"] != port {
		t.Errorf("container port metrics is %q, but metrics.listen is %s", portNames["metrics"], w.listen)
	}
	resolve := func(p intOrString) string {
		if n, ok := portNames[p.s]; ok {
			return n
		}
		return p.s
	}
	for _, pr := range []struct {
		name string
		p    *probe
		path string
	}{
		{"livenessProbe", w.c.LivenessProbe, "/healthz"},
		{"readinessProbe", w.c.ReadinessProbe, "/readyz"},
		{"startupProbe", w.c.StartupProbe, "/healthz"},
	} {
		if pr.p == nil || pr.p.HTTPGet == nil {
			if pr.name != "startupProbe" {
				t.Errorf("%s: want an httpGet on %s", pr.name, pr.path)
			}
			continue
		}
		if pr.p.HTTPGet.Path != pr.path || resolve(pr.p.HTTPGet.Port) != port {
			t.Errorf("%s: %s on port %s; the worker serves %s on %s", pr.name, pr.p.HTTPGet.Path, resolve(pr.p.HTTPGet.Port), pr.path, port)
		}
	}
	// The errors view shows record data: loopback only (kubectl port-forward
	// reaches it), never a container port.
	if el := w.cfg.Errors.Listen; el != "" {
		eh, ep, err := net.SplitHostPort(el)
		if ip := net.ParseIP(eh); err != nil || (eh != "localhost" && (ip == nil || !ip.IsLoopback())) {
			t.Errorf("errors.listen %q: the errors view shows record data; keep it on loopback or \"\"", el)
		}
		// The default, port 0, is a free port only the pod's log names:
		// kubectl port-forward needs one known in advance.
		if ep == "0" {
			t.Errorf("errors.listen %q: set a fixed loopback port (e.g. 127.0.0.1:9109) for kubectl port-forward to reach, or \"\"", el)
		}
		for _, p := range w.c.Ports {
			if strconv.Itoa(p.ContainerPort) == ep {
				t.Errorf("container port %d is the errors view's (errors.listen %s): do not expose it", p.ContainerPort, el)
			}
		}
	}
	// Liveness must not flap while a worker waits for a sink: /readyz does
	// that, so a sink outage never restarts pods.
	if w.c.LivenessProbe != nil && w.c.LivenessProbe.HTTPGet != nil && w.c.LivenessProbe.HTTPGet.Path == "/readyz" {
		t.Error("livenessProbe on /readyz: a sink outage would restart every pod")
	}

	// The image's user, and nothing written outside a durable volume.
	df := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	uid, _, _ := strings.Cut(df.final().last("USER"), ":")
	if sc := spec.SecurityContext; !sc.RunAsNonRoot || strconv.Itoa(sc.RunAsUser) != uid {
		t.Errorf("securityContext runAsNonRoot %v runAsUser %d, want true and the Dockerfile's USER %s", sc.RunAsNonRoot, sc.RunAsUser, uid)
	}
	var dirs []string
	for _, s := range w.cfg.Sinks {
		if s.File != nil {
			dirs = append(dirs, s.File.Path)
		}
	}
	if w.cfg.DeadLetter.File != nil {
		dirs = append(dirs, w.cfg.DeadLetter.File.Path)
	}
	for _, dir := range dirs {
		durable := false
		for _, m := range w.c.VolumeMounts {
			if m.ReadOnly || (dir != m.MountPath && !strings.HasPrefix(dir, strings.TrimSuffix(m.MountPath, "/")+"/")) {
				continue
			}
			for _, v := range spec.Volumes {
				if v.Name == m.Name && v.PersistentVolumeClaim != nil {
					durable = true
				}
			}
		}
		if !durable {
			t.Errorf("the config writes files to %s, which is on no writable PersistentVolumeClaim: they would go with the pod", dir)
		}
	}
}

// TestKubernetesConfigSchema: the mounted config is valid under the config's
// JSON Schema, as an editor would check it.
func TestKubernetesConfigSchema(t *testing.T) {
	root := repoRoot(t)
	k := loadKube(t, root)
	w := loadKubeWorker(t, root, k)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(config.JSONSchema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(config.SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(config.SchemaID)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal([]byte(w.raw), &v); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(v); err != nil {
		t.Errorf("the ConfigMap's config fails the JSON Schema: %v", err)
	}
}

// TestKubernetesScrapeAndDisruption: the Service and ServiceMonitor reach
// /metrics of every pod and nothing else; the PodDisruptionBudget lets a
// drain proceed one pod at a time.
func TestKubernetesScrapeAndDisruption(t *testing.T) {
	root := repoRoot(t)
	k := loadKube(t, root)
	w := loadKubeWorker(t, root, k)
	pods := k.deployment.Spec.Template.Metadata.Labels
	_, port, _ := net.SplitHostPort(w.listen)

	if len(k.services) != 1 {
		t.Fatalf("%d Services, want one, for the ServiceMonitor", len(k.services))
	}
	svc := k.services[0]
	if !selects(svc.Spec.Selector, pods) {
		t.Errorf("Service %s selects %v, not the worker pods %v", svc.Metadata.Name, svc.Spec.Selector, pods)
	}
	if len(svc.Spec.Ports) != 1 {
		t.Fatalf("Service %s: %d ports, want the metrics port alone", svc.Metadata.Name, len(svc.Spec.Ports))
	}
	sp := svc.Spec.Ports[0]
	target := sp.TargetPort.s
	if target == "metrics" {
		target = port
	}
	if sp.Name != "metrics" || target != port {
		t.Errorf("Service port %s -> %s, want metrics -> %s (metrics.listen)", sp.Name, sp.TargetPort.s, port)
	}
	if svc.Spec.Type != "" && svc.Spec.Type != "ClusterIP" {
		t.Errorf("Service type %s: the port also serves the errors view; keep it inside the cluster (ClusterIP)", svc.Spec.Type)
	}

	sm := k.serviceMonitor
	if !selects(sm.Spec.Selector.MatchLabels, svc.Metadata.Labels) {
		t.Errorf("ServiceMonitor selects %v, not the Service's labels %v", sm.Spec.Selector.MatchLabels, svc.Metadata.Labels)
	}
	if len(sm.Spec.Endpoints) == 0 {
		t.Error("ServiceMonitor has no endpoints")
	}
	for i, e := range sm.Spec.Endpoints {
		if e.Port != sp.Name {
			t.Errorf("ServiceMonitor endpoint %d: port %q, want the Service's %q", i, e.Port, sp.Name)
		}
		if e.Path != "/metrics" || len(e.Params) > 0 {
			t.Errorf("ServiceMonitor endpoint %d: path %q params %v, want /metrics alone", i, e.Path, e.Params)
		}
	}

	pdb := k.pdb
	if !selects(pdb.Spec.Selector.MatchLabels, pods) {
		t.Errorf("PodDisruptionBudget selects %v, not the worker pods %v", pdb.Spec.Selector.MatchLabels, pods)
	}
	switch {
	case pdb.Spec.MaxUnavailable != nil && pdb.Spec.MinAvailable == nil:
		if n, err := strconv.Atoi(pdb.Spec.MaxUnavailable.s); err != nil || n < 1 || n >= k.deployment.Spec.Replicas {
			t.Errorf("PodDisruptionBudget maxUnavailable %q: want 1 .. replicas-1, so a drain proceeds and never takes every worker", pdb.Spec.MaxUnavailable.s)
		}
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MaxUnavailable == nil:
		if n, err := strconv.Atoi(pdb.Spec.MinAvailable.s); err != nil || n < 1 || n >= k.deployment.Spec.Replicas {
			t.Errorf("PodDisruptionBudget minAvailable %q: want 1 .. replicas-1, or a drain blocks forever", pdb.Spec.MinAvailable.s)
		}
	default:
		t.Error("PodDisruptionBudget: want exactly one of maxUnavailable and minAvailable")
	}
}

// TestKubernetesServiceAccount: the IRSA annotation names an IAM role.
func TestKubernetesServiceAccount(t *testing.T) {
	root := repoRoot(t)
	k := loadKube(t, root)
	sa := k.serviceAccount[k.deployment.Spec.Template.Spec.ServiceAccountName]
	if sa == nil {
		t.Fatal("the Deployment's service account is not among the manifests")
	}
	arn := sa.Metadata.Annotations["eks.amazonaws.com/role-arn"]
	if _, err := config.ParseRoleARN(arn); err != nil {
		t.Errorf("ServiceAccount %s: eks.amazonaws.com/role-arn %q: %v", sa.Metadata.Name, arn, err)
	}
}
