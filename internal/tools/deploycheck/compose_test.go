package deploycheck

import (
	"context"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"gopkg.in/yaml.v3"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
)

// The services docker-compose.yml must have, and the port each listens on
// inside the compose network (0: none).
var wantServices = map[string]int{
	"localstack": 4566,
	"init":       0,
	"postgres":   5432,
	"worker":     0, // metrics port: from the worker config
	"producer":   0,
	"prometheus": 9090,
	"grafana":    3000,
}

// The services that need a healthcheck (in the compose file, or for a service
// built here, in the Dockerfile).
var wantHealthchecks = []string{"localstack", "postgres", "worker", "prometheus", "grafana"}

// The services that talk to AWS and so must find LocalStack through
// AWS_ENDPOINT_URL.
var awsClients = []string{"worker", "init", "producer"}

const workerReplicas = 3

func TestComposeServices(t *testing.T) {
	root := repoRoot(t)
	c := loadCompose(t, root)
	for name := range wantServices {
		if c.Services[name] == nil {
			t.Errorf("service %s is missing", name)
		}
	}
	for name, s := range c.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("service %s: neither image nor build", name)
		}
		if s.Build == nil {
			// Pinned, so `docker compose up` means the same thing next year.
			_, tag, ok := strings.Cut(lastPathElem(s.Image), ":")
			if !ok || tag == "" || tag == "latest" {
				t.Errorf("service %s: image %q is not pinned to a version tag", name, s.Image)
			}
		}
		for dep, cond := range s.DependsOn {
			if c.Services[dep] == nil {
				t.Errorf("service %s depends on %s, which does not exist", name, dep)
				continue
			}
			switch cond {
			case "service_started":
			case "service_healthy":
				if !hasHealthcheck(t, root, c.Services[dep]) {
					t.Errorf("service %s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
				}
			case "service_completed_successfully":
				if r := c.Services[dep].Restart; r != "" && r != "no" {
					t.Errorf("service %s waits for %s to complete, but %s has restart: %s", name, dep, dep, r)
				}
			default:
				t.Errorf("service %s: depends_on %s: unknown condition %q", name, dep, cond)
			}
		}
	}
	if t.Failed() {
		return
	}

	// The AWS clients start only once the stream exists, and init only once
	// LocalStack answers.
	if got := c.Services["init"].DependsOn["localstack"]; got != "service_healthy" {
		t.Errorf("init: depends_on localstack condition %q, want service_healthy", got)
	}
	for _, name := range []string{"worker", "producer"} {
		if got := c.Services[name].DependsOn["init"]; got != "service_completed_successfully" {
			t.Errorf("%s: depends_on init condition %q, want service_completed_successfully", name, got)
		}
	}
	if got := c.Services["grafana"].DependsOn["prometheus"]; got == "" {
		t.Errorf("grafana does not depend on prometheus")
	}

	w := c.Services["worker"]
	if w.Deploy == nil || w.Deploy.Replicas == nil || *w.Deploy.Replicas != workerReplicas {
		t.Errorf("worker: want deploy.replicas: %d", workerReplicas)
	}
	if w.ContainerName != "" || w.Hostname != "" {
		t.Errorf("worker: container_name %q / hostname %q: replicas need their own (and the worker id defaults to <hostname>-<pid>)", w.ContainerName, w.Hostname)
	}
	if w.Build == nil {
		t.Errorf("worker: no build: it runs the image of this repository's Dockerfile")
	} else {
		df := w.Build.Dockerfile
		if df == "" {
			df = "Dockerfile"
		}
		if _, err := os.Stat(filepath.Join(root, w.Build.Context, df)); err != nil {
			t.Errorf("worker: build: %v", err)
		}
	}
	if w.StopGracePeriod == "" {
		t.Errorf("worker: no stop_grace_period: docker's default 10s is shorter than consumer.shutdown_timeout")
	}
	for _, p := range w.Ports {
		if pp, err := parsePort(p); err != nil || pp.Host != 0 {
			t.Errorf("worker: port %q: a fixed host port clashes between replicas; Prometheus scrapes them on the compose network", p)
		}
	}
}

func lastPathElem(image string) string {
	return image[strings.LastIndex(image, "/")+1:]
}

func TestComposePorts(t *testing.T) {
	c := loadCompose(t, repoRoot(t))
	owner := map[int]string{}
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		for _, ps := range s.Ports {
			p, err := parsePort(ps)
			if err != nil {
				t.Errorf("service %s: %v", name, err)
				continue
			}
			if want := wantServices[name]; want != 0 && p.Container != want {
				t.Errorf("service %s: publishes container port %d, but it listens on %d", name, p.Container, want)
			}
			if p.Host == 0 {
				continue
			}
			if p.IP != "127.0.0.1" {
				t.Errorf("service %s: port %q is published on every interface; bind it to 127.0.0.1", name, ps)
			}
			if o, dup := owner[p.Host]; dup {
				t.Errorf("host port %d is published by both %s and %s", p.Host, o, name)
			}
			owner[p.Host] = name
		}
	}
	if len(owner) == 0 {
		t.Errorf("no published port at all")
	}
	// LocalStack must be reachable from the host for make test-localstack.
	if owner[4566] != "localstack" {
		t.Errorf("localstack is not published on host port 4566 (make test-localstack's default endpoint)")
	}
}

func TestComposeHealthchecks(t *testing.T) {
	root := repoRoot(t)
	c := loadCompose(t, root)
	for _, name := range wantHealthchecks {
		s := c.Services[name]
		if s == nil {
			t.Errorf("service %s is missing", name)
			continue
		}
		if !hasHealthcheck(t, root, s) {
			t.Errorf("service %s has no healthcheck", name)
			continue
		}
		if h := s.Healthcheck; h != nil {
			if len(h.Test) < 2 || (h.Test[0] != "CMD" && h.Test[0] != "CMD-SHELL") {
				t.Errorf("service %s: healthcheck test %q: want [CMD, ...] or [CMD-SHELL, ...]", name, h.Test)
			}
		}
	}
	if t.Failed() {
		return
	}
	if hc := strings.Join(c.Services["localstack"].Healthcheck.Test, " "); !strings.Contains(hc, "/_localstack/health") || !strings.Contains(hc, "kinesis") || !strings.Contains(hc, "dynamodb") {
		t.Errorf("localstack healthcheck %q: want /_localstack/health with kinesis and dynamodb up", hc)
	}
	// The worker's compose healthcheck (if any) probes /healthz on the port
	// the worker config serves metrics on.
	_, listen := workerConfig(t, root, c)
	if h := c.Services["worker"].Healthcheck; h != nil {
		checkHealthURL(t, "worker healthcheck", strings.Join(h.Test, " "), listen)
	}
}

// checkHealthURL requires /healthz on the port of listen in the command cmd.
func checkHealthURL(t *testing.T, what, cmd, listen string) {
	t.Helper()
	_, port, _ := net.SplitHostPort(listen)
	m := regexp.MustCompile(`https?://[^\s"']+`).FindString(cmd)
	u, err := url.Parse(m)
	if m == "" || err != nil {
		t.Errorf("%s %q: no URL", what, cmd)
		return
	}
	if u.Path != "/healthz" {
		t.Errorf("%s %q: probes %s, want /healthz", what, cmd, u.Path)
	}
	if u.Port() != port {
		t.Errorf("%s %q: port %s, but the worker config serves metrics.listen %s", what, cmd, u.Port(), listen)
	}
}

func hasHealthcheck(t *testing.T, root string, s *service) bool {
	if s.Healthcheck != nil {
		return !s.Healthcheck.Disable && len(s.Healthcheck.Test) > 0 && s.Healthcheck.Test[0] != "NONE"
	}
	if s.Build != nil {
		df := parseDockerfile(t, filepath.Join(root, s.Build.Context, "Dockerfile"))
		return df.final().last("HEALTHCHECK") != ""
	}
	return false
}

func TestComposeVolumes(t *testing.T) {
	root := repoRoot(t)
	c := loadCompose(t, root)
	used := map[string]bool{}
	for _, name := range sortedKeys(c.Services) {
		targets := map[string]bool{}
		for _, m := range c.Services[name].Volumes {
			if targets[m.Target] {
				t.Errorf("service %s: two mounts on %s", name, m.Target)
			}
			targets[m.Target] = true
			switch m.Type {
			case "bind":
				if filepath.IsAbs(m.Source) || strings.HasPrefix(m.Source, "~") {
					t.Errorf("service %s: bind mount %s is outside the repository", name, m.Source)
					continue
				}
				if _, err := os.Stat(filepath.Join(root, m.Source)); err != nil {
					t.Errorf("service %s: bind mount source %s does not exist in the repository (%v)", name, m.Source, err)
				}
				if !m.ReadOnly {
					t.Errorf("service %s: bind mount %s is writable; mount files from the repository :ro", name, m.Source)
				}
			case "volume":
				if m.Source == "" {
					t.Errorf("service %s: anonymous volume on %s; name it", name, m.Target)
					continue
				}
				if _, ok := c.Volumes[m.Source]; !ok {
					t.Errorf("service %s: volume %s is not declared under volumes:", name, m.Source)
				}
				used[m.Source] = true
			default:
				t.Errorf("service %s: mount type %q", name, m.Type)
			}
		}
	}
	for v := range c.Volumes {
		if !used[v] {
			t.Errorf("volume %s is declared but no service mounts it", v)
		}
	}
}

// workerConfig returns the host path of the configuration the worker runs with
// (the bind mount on the --config path of its command) and its metrics.listen.
func workerConfig(t *testing.T, root string, c *composeFile) (hostPath, listen string) {
	t.Helper()
	w := c.Services["worker"]
	if w == nil {
		t.Fatal("no worker service")
	}
	cmd := []string(w.Command)
	if len(cmd) == 0 {
		cmd = parseDockerfile(t, filepath.Join(root, "Dockerfile")).final().execForm("CMD")
	}
	i := slices.Index(cmd, "--config")
	if i < 0 || i+1 >= len(cmd) {
		t.Fatalf("worker command %q has no --config FILE", cmd)
	}
	target := cmd[i+1]
	for _, m := range w.Volumes {
		if m.Type == "bind" && m.Target == target {
			hostPath = filepath.Join(root, m.Source)
		}
	}
	if hostPath == "" {
		t.Fatalf("worker runs with --config %s, but mounts no file there", target)
	}
	setEnv(t, w.Environment)
	cfg, err := config.Load(hostPath)
	if err != nil {
		t.Fatalf("worker config %s with the worker's compose environment: %v", hostPath, err)
	}
	return hostPath, cfg.Metrics.Listen
}

// setEnv makes env the whole AWS and config-relevant environment of the test:
// every AWS_* variable of the host is unset, shared config files point
// nowhere, then env is set.
func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// configEnvRefs lists the ${NAME}s in a config file as config.Load expands
// them ($${ is a literal).
func configEnvRefs(data string) []string {
	var names []string
	for i := 0; i < len(data); i++ {
		if strings.HasPrefix(data[i:], "$${") {
			i += 2
			continue
		}
		if strings.HasPrefix(data[i:], "${") {
			if end := strings.IndexByte(data[i:], '}'); end > 0 {
				names = append(names, data[i+2:i+end])
				i += end
			}
		}
	}
	return names
}

func TestComposeWorkerConfig(t *testing.T) {
	root := repoRoot(t)
	c := loadCompose(t, root)
	w := c.Services["worker"]
	hostPath, listen := workerConfig(t, root, c)
	data, err := os.ReadFile(hostPath)
	if err != nil {
		t.Fatal(err)
	}
	refs := configEnvRefs(string(data))
	for _, name := range refs {
		if _, ok := w.Environment[name]; !ok {
			t.Errorf("worker config %s uses ${%s}, which the worker service does not set", hostPath, name)
		}
	}
	cfg, err := config.Load(hostPath) // the environment is still the worker's (workerConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, warn := range cfg.Warnings {
		t.Errorf("worker config warning: %s", warn)
	}

	// Each replica has its own worker id only because none is configured.
	var raw struct {
		Consumer map[string]any `yaml:"consumer"`
	}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if _, set := raw.Consumer["worker_id"]; set {
		t.Errorf("worker config sets consumer.worker_id: every replica would have the same; leave it unset (default <hostname>-<pid>)")
	}

	// Prometheus (another container) must reach the metrics port.
	host, port, err := net.SplitHostPort(listen)
	if err != nil || (host != "0.0.0.0" && host != "" && host != "::") || port == "0" {
		t.Errorf("worker config metrics.listen %q: want 0.0.0.0:PORT inside a container", listen)
	}
	// ... but nothing else may: the errors view shows record data, so it
	// stays on loopback (docker compose exec, or `kinesis-ingest errors`) or off.
	if el := cfg.Errors.Listen; el != "" {
		host, _, err := net.SplitHostPort(el)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			t.Errorf("worker config errors.listen %q: the errors view shows record data; keep it on 127.0.0.1 or turn it off with \"\"", el)
		}
	}

	// Sinks write under a named volume that every replica mounts writable.
	var dirs []string
	for _, s := range cfg.Sinks {
		if s.File != nil {
			dirs = append(dirs, s.File.Path)
		}
	}
	if cfg.DeadLetter.File != nil {
		dirs = append(dirs, cfg.DeadLetter.File.Path)
	}
	for _, d := range dirs {
		ok := false
		for _, m := range w.Volumes {
			if m.Type == "volume" && !m.ReadOnly && (d == m.Target || strings.HasPrefix(d, strings.TrimSuffix(m.Target, "/")+"/")) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("worker config writes to %s, which is on no writable named volume of the worker", d)
		}
	}

	// Postgres sinks reach the compose PostgreSQL with its credentials.
	pg := c.Services["postgres"]
	checkDSN := func(what, dsn string) {
		u, err := url.Parse(dsn)
		if err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" {
			t.Errorf("%s: dsn %q: want a postgres:// URL", what, dsn)
			return
		}
		pw, _ := u.User.Password()
		if u.Hostname() != "postgres" || (u.Port() != "" && u.Port() != "5432") || u.User.Username() != pg.Environment["POSTGRES_USER"] ||
			pw != pg.Environment["POSTGRES_PASSWORD"] || strings.TrimPrefix(u.Path, "/") != pg.Environment["POSTGRES_DB"] {
			t.Errorf("%s: dsn %q does not match the postgres service (host postgres:5432, its POSTGRES_USER, _PASSWORD, _DB)", what, dsn)
		}
		if w.DependsOn["postgres"] != "service_healthy" {
			t.Errorf("%s writes to postgres, but the worker does not wait for it to be healthy", what)
		}
	}
	for _, s := range cfg.Sinks {
		if s.Postgres != nil {
			checkDSN("sink "+s.Name, s.Postgres.DSN)
		}
	}
	if p := cfg.DeadLetter.Postgres; p != nil {
		checkDSN("dead_letter", p.DSN)
	}

	// The stream the workers read is the one init creates.
	init := c.Services["init"]
	for _, src := range cfg.Sources {
		arn := src.Kinesis.StreamARN.String()
		want := "arn:aws:kinesis:" + init.Environment["AWS_REGION"] + ":000000000000:stream/" + init.Environment["STREAM_NAME"]
		if arn != want {
			t.Errorf("source %s: stream_arn %s, but init creates %s (region AWS_REGION, LocalStack's account, STREAM_NAME)", src.Name, arn, want)
		}
	}
	if prod := c.Services["producer"]; prod.Environment["STREAM_NAME"] != init.Environment["STREAM_NAME"] {
		t.Errorf("producer writes to %q, init creates %q", prod.Environment["STREAM_NAME"], init.Environment["STREAM_NAME"])
	}
	if cfg.Consumer.Application == "" {
		t.Errorf("worker config: no lease table (consumer.application)")
	}
}

// TestComposeAWSEnvironment checks that the AWS variables compose sets are
// the SDK's standard ones and point at LocalStack: for the worker, by loading
// them as the worker does and asking the SDK where each client would go.
func TestComposeAWSEnvironment(t *testing.T) {
	root := repoRoot(t)
	c := loadCompose(t, root)
	localstack := "http://localstack:" + strconv.Itoa(wantServices["localstack"])
	for _, name := range awsClients {
		s := c.Services[name]
		if got := s.Environment["AWS_ENDPOINT_URL"]; got != localstack {
			t.Errorf("service %s: AWS_ENDPOINT_URL %q, want %s", name, got, localstack)
		}
		for _, k := range []string{"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
			if s.Environment[k] == "" {
				t.Errorf("service %s: %s is not set", name, k)
			}
		}
		if r := s.Environment["AWS_DEFAULT_REGION"]; r != "" && r != s.Environment["AWS_REGION"] {
			t.Errorf("service %s: AWS_DEFAULT_REGION %s differs from AWS_REGION %s", name, r, s.Environment["AWS_REGION"])
		}
	}

	// The worker: every variable is either one its config expands or an AWS
	// one whose effect the SDK shows below.
	w := c.Services["worker"]
	hostPath, _ := workerConfig(t, root, c) // also sets the worker's environment
	data, _ := os.ReadFile(hostPath)
	refs := configEnvRefs(string(data))
	checked := map[string]bool{"AWS_ENDPOINT_URL": true, "AWS_REGION": true, "AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true}
	for _, svc := range []string{kinesis.ServiceID, dynamodb.ServiceID, sts.ServiceID, s3.ServiceID} {
		checked["AWS_ENDPOINT_URL_"+strings.ToUpper(strings.ReplaceAll(svc, " ", "_"))] = true
	}
	for k := range w.Environment {
		if !slices.Contains(refs, k) && !checked[k] {
			t.Errorf("worker: environment %s is neither used by its config nor an AWS variable this test knows the SDK reads", k)
		}
	}
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := func(k string) string {
		if v, ok := w.Environment[k]; ok {
			return v
		}
		return w.Environment["AWS_ENDPOINT_URL"]
	}
	if got, want := aws.ToString(kinesis.NewFromConfig(cfg).Options().BaseEndpoint), want("AWS_ENDPOINT_URL_KINESIS"); got != want {
		t.Errorf("worker: the SDK sends Kinesis calls to %q, want %q", got, want)
	}
	if got, want := aws.ToString(dynamodb.NewFromConfig(cfg).Options().BaseEndpoint), want("AWS_ENDPOINT_URL_DYNAMODB"); got != want {
		t.Errorf("worker: the SDK sends DynamoDB calls to %q, want %q", got, want)
	}
	if got, want := aws.ToString(sts.NewFromConfig(cfg).Options().BaseEndpoint), want("AWS_ENDPOINT_URL_STS"); got != want {
		t.Errorf("worker: the SDK sends STS calls to %q, want %q", got, want)
	}
	if got, want := aws.ToString(s3.NewFromConfig(cfg).Options().BaseEndpoint), want("AWS_ENDPOINT_URL_S3"); got != want {
		t.Errorf("worker: the SDK sends S3 calls to %q, want %q", got, want)
	}
	if cfg.Region != w.Environment["AWS_REGION"] {
		t.Errorf("worker: SDK region %q, want AWS_REGION %q", cfg.Region, w.Environment["AWS_REGION"])
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatalf("worker: credentials: %v", err)
	}
	if creds.AccessKeyID != w.Environment["AWS_ACCESS_KEY_ID"] || creds.SecretAccessKey != w.Environment["AWS_SECRET_ACCESS_KEY"] || creds.Source != "EnvConfigCredentials" {
		t.Errorf("worker: SDK credentials %s from %s, want AWS_ACCESS_KEY_ID from the environment", creds.AccessKeyID, creds.Source)
	}

	// The AWS CLI services: AWS variables the CLI reads, the rest read by
	// their script.
	cliVars := []string{"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PAGER"}
	for _, name := range []string{"init", "producer"} {
		s := c.Services[name]
		script := ""
		for _, m := range s.Volumes {
			if m.Type == "bind" && slices.Contains(s.Entrypoint, m.Target) {
				b, err := os.ReadFile(filepath.Join(root, m.Source))
				if err != nil {
					t.Fatal(err)
				}
				script = string(b)
			}
		}
		if script == "" {
			t.Errorf("service %s: its entrypoint %q runs no mounted script", name, s.Entrypoint)
			continue
		}
		for k := range s.Environment {
			if strings.HasPrefix(k, "AWS_") {
				if !slices.Contains(cliVars, k) && !strings.HasPrefix(k, "AWS_ENDPOINT_URL_") {
					t.Errorf("service %s: %s is not an AWS CLI variable", name, k)
				}
				continue
			}
			if !regexp.MustCompile(`\$\{?` + k + `\b`).MatchString(script) {
				t.Errorf("service %s: environment %s is not used by its script", name, k)
			}
		}
	}
}

func TestComposePrometheus(t *testing.T) {
	root := repoRoot(t)
	c := loadCompose(t, root)
	_, listen := workerConfig(t, root, c)
	_, metricsPort, _ := net.SplitHostPort(listen)
	p := c.Services["prometheus"]
	file := ""
	for _, arg := range p.Command {
		if v, ok := strings.CutPrefix(arg, "--config.file="); ok {
			file = v
		}
	}
	if file == "" {
		file = "/etc/prometheus/prometheus.yml" // the image's default
	}
	host := mountedFile(t, root, p, file)
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName     string `yaml:"job_name"`
			MetricsPath string `yaml:"metrics_path"`
			DNSSD       []struct {
				Names []string `yaml:"names"`
				Type  string   `yaml:"type"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, host, &cfg)
	found := false
	for _, sc := range cfg.ScrapeConfigs {
		for _, sd := range sc.DNSSD {
			if slices.Contains(sd.Names, "worker") {
				found = true
				if sd.Type != "A" || strconv.Itoa(sd.Port) != metricsPort {
					t.Errorf("%s: job %s: dns_sd_configs worker type %s port %d, want type A port %s (metrics.listen %s)", host, sc.JobName, sd.Type, sd.Port, metricsPort, listen)
				}
				if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
					t.Errorf("%s: job %s: metrics_path %s, want /metrics", host, sc.JobName, sc.MetricsPath)
				}
			}
		}
	}
	if !found {
		t.Errorf("%s: no dns_sd_configs on the worker service: Prometheus would not find every replica", host)
	}
	// Rule files are read relative to the config file, so they must be
	// mounted next to it; and they must be YAML with groups.
	for _, rf := range cfg.RuleFiles {
		target := rf
		if !path.IsAbs(rf) {
			target = path.Join(path.Dir(file), rf)
		}
		var rules struct {
			Groups []struct {
				Name  string           `yaml:"name"`
				Rules []map[string]any `yaml:"rules"`
			} `yaml:"groups"`
		}
		readYAML(t, mountedFile(t, root, p, target), &rules)
		if len(rules.Groups) == 0 {
			t.Errorf("%s: rule file %s has no groups", host, rf)
		}
	}
}

func TestComposeGrafana(t *testing.T) {
	root := repoRoot(t)
	c := loadCompose(t, root)
	g := c.Services["grafana"]

	// Datasources: the compose Prometheus.
	var uids []string
	dsFiles := mountedUnder(t, root, g, "/etc/grafana/provisioning/datasources/")
	if len(dsFiles) == 0 {
		t.Fatalf("grafana: nothing mounted under /etc/grafana/provisioning/datasources/")
	}
	promURL := "http://prometheus:" + strconv.Itoa(wantServices["prometheus"])
	for _, f := range dsFiles {
		var ds struct {
			Datasources []struct {
				Name string `yaml:"name"`
				UID  string `yaml:"uid"`
				Type string `yaml:"type"`
				URL  string `yaml:"url"`
			} `yaml:"datasources"`
		}
		readYAML(t, f, &ds)
		for _, d := range ds.Datasources {
			if d.Type == "prometheus" {
				if d.URL != promURL {
					t.Errorf("%s: datasource %s: url %s, want %s", f, d.Name, d.URL, promURL)
				}
				uids = append(uids, d.UID)
			}
		}
	}
	if len(uids) == 0 {
		t.Errorf("grafana: no prometheus datasource provisioned")
	}

	// Dashboards: a file provider whose path holds the mounted dashboard.
	var paths []string
	for _, f := range mountedUnder(t, root, g, "/etc/grafana/provisioning/dashboards/") {
		var dp struct {
			Providers []struct {
				Type    string `yaml:"type"`
				Options struct {
					Path string `yaml:"path"`
				} `yaml:"options"`
			} `yaml:"providers"`
		}
		readYAML(t, f, &dp)
		for _, p := range dp.Providers {
			if p.Type == "file" || p.Type == "" {
				paths = append(paths, p.Options.Path)
			}
		}
	}
	if len(paths) == 0 {
		t.Fatalf("grafana: no file dashboard provider provisioned")
	}
	var dashboards []string
	for _, m := range g.Volumes {
		for _, p := range paths {
			if m.Type == "bind" && strings.HasSuffix(m.Target, ".json") && path.Dir(m.Target) == path.Clean(p) {
				dashboards = append(dashboards, filepath.Join(root, m.Source))
			}
		}
	}
	if len(dashboards) == 0 {
		t.Fatalf("grafana: no dashboard JSON mounted in a provider path %v", paths)
	}
	for _, f := range dashboards {
		checkDashboard(t, f, uids)
	}
}

// checkDashboard requires a dashboard Grafana can provision (no import-time
// __inputs) whose datasource references are variables or provisioned uids.
func checkDashboard(t *testing.T, file string, uids []string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Errorf("dashboard: %v", err)
		return
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Errorf("dashboard %s is not JSON: %v", file, err)
		return
	}
	if in, _ := d["__inputs"].([]any); len(in) > 0 {
		t.Errorf("dashboard %s has __inputs (an export for import): provisioning does not fill them in", file)
	}
	if title, _ := d["title"].(string); title == "" {
		t.Errorf("dashboard %s has no title", file)
	}
	if _, ok := d["panels"].([]any); !ok {
		t.Errorf("dashboard %s has no panels", file)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ds, ok := v["datasource"].(map[string]any); ok {
				uid, _ := ds["uid"].(string)
				typ, _ := ds["type"].(string)
				if uid != "" && !strings.HasPrefix(uid, "$") && typ != "datasource" && !slices.Contains(uids, uid) {
					t.Errorf("dashboard %s refers to datasource uid %q; the provisioned ones are %v", file, uid, uids)
				}
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(d)
}

// mountedFile returns the host file s mounts at target.
func mountedFile(t *testing.T, root string, s *service, target string) string {
	t.Helper()
	for _, m := range s.Volumes {
		if m.Type == "bind" && m.Target == target {
			return filepath.Join(root, m.Source)
		}
	}
	t.Fatalf("nothing is mounted at %s", target)
	return ""
}

// mountedUnder returns the host files s mounts under the directory dir.
func mountedUnder(t *testing.T, root string, s *service, dir string) []string {
	t.Helper()
	var out []string
	for _, m := range s.Volumes {
		if m.Type == "bind" && strings.HasPrefix(m.Target, dir) {
			out = append(out, filepath.Join(root, m.Source))
		}
	}
	return out
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
