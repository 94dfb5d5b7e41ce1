package metrics

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"
)

var (
	descName   = regexp.MustCompile(`^Desc\{fqName: "([^"]*)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}\}$`)
)

// describe lists the metric names (with their variable labels) c can expose.
func describe(t *testing.T, c prometheus.Collector) map[string][]string {
	t.Helper()
	ch := make(chan *prometheus.Desc, 256)
	go func() { c.Describe(ch); close(ch) }()
	out := map[string][]string{}
	for d := range ch {
		s := d.String()
		n := descName.FindStringSubmatch(s)
		if n == nil {
			t.Fatalf("cannot read a metric name from %s", s)
		}
		var labels []string
		if l := descLabels.FindStringSubmatch(s); l != nil && l[1] != "" {
			for _, name := range strings.Split(l[1], ",") {
				labels = append(labels, strings.TrimSuffix(strings.TrimPrefix(name, "c("), ")"))
			}
		}
		out[n[1]] = labels
	}
	return out
}

func labelsOf(t *testing.T, c prometheus.Collector) prometheus.Labels {
	t.Helper()
	l := prometheus.Labels{}
	for _, labels := range describe(t, c) {
		for _, name := range labels {
			l[name] = "x"
		}
	}
	return l
}

func gather(t *testing.T, g prometheus.Gatherer) []*dto.MetricFamily {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// catalog is every metric a worker's registry can expose, with its labels:
// ours, the Go and process collectors, and Watermill's router metrics (which
// register when an instrumented router runs).
func catalog(t *testing.T) map[string][]string {
	t.Helper()
	m, _ := NewWithRuntime()
	logger := watermill.NopLogger{}
	ps := gochannel.NewGoChannel(gochannel.Config{}, logger)
	r, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	m.InstrumentRouter(r)
	r.AddConsumerHandler("deliver-orders", "orders", ps, func(*message.Message) error { return nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-r.Running()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = ps.Close()
	out := map[string][]string{}
	for _, c := range m.reg.registered() {
		for name, labels := range describe(t, c) {
			out[name] = labels
		}
	}
	return out
}

func TestCatalogHasTheIssueMetrics(t *testing.T) {
	cat := catalog(t)
	for _, want := range []string{
		"kinesis_ingest_records_received_total", "kinesis_ingest_bytes_received_total",
		"kinesis_ingest_millis_behind_latest", "kinesis_ingest_iterator_age_seconds",
		"kinesis_ingest_rows_written_total", "kinesis_ingest_dead_letters_total",
		"kinesis_ingest_sink_batch_rows", "kinesis_ingest_sink_write_seconds",
		"kinesis_ingest_end_to_end_latency_seconds", "kinesis_ingest_last_checkpoint_timestamp_seconds",
		"kinesis_ingest_leases_held", "kinesis_ingest_lease_events_total", "kinesis_ingest_retries_total",
		"kinesis_ingest_watermill_handler_execution_time_seconds", "kinesis_ingest_watermill_subscriber_messages_received_total",
		"go_goroutines", "process_resident_memory_bytes",
	} {
		if _, ok := cat[want]; !ok {
			t.Errorf("the registry lacks %s", want)
		}
	}
}

// expressions collects every PromQL expression of the dashboard, with where
// it is, including template variable queries (label_values(metric, label)).
func dashboardExprs(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "kinesis-ingest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID        string  `json:"uid"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.UID == "" {
		t.Error("dashboard has no uid")
	}
	out := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q target %s has an empty expression", p.Title, tg.RefID)
				}
				out["panel "+p.Title+" "+tg.RefID] = tg.Expr
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			_ = json.Unmarshal(v.Query, &q.Query) // a plain string
		}
		out["variable "+v.Name] = q.Query
	}
	return out
}

type panel struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func alertExprs(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	out := map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out["alert "+r.Alert] = r.Expr
		}
	}
	return out
}

var (
	stringLit  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	grafanaVar = regexp.MustCompile(`\$\{?\w+\}?`)
	metricName = regexp.MustCompile(`\b(?:kinesis_ingest|go|process)_[a-zA-Z0-9_]+`)
	matchers   = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}`)
	matcher    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	grouping   = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	labelValue = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)`)
)

// resolve finds the metric a PromQL name refers to: itself, or the histogram
// whose _bucket, _sum or _count series it is.
func resolve(cat map[string][]string, name string) (string, bool) {
	if _, ok := cat[name]; ok {
		return name, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if _, ok := cat[base]; ok {
				return base, true
			}
		}
	}
	return "", false
}

// TestDashboardAndAlertsUseOurMetrics checks that every PromQL expression of
// the Grafana dashboard and the alert rules names only metrics the worker's
// registry has, and only labels those metrics carry.
func TestDashboardAndAlertsUseOurMetrics(t *testing.T) {
	cat := catalog(t)
	exprs := dashboardExprs(t)
	for k, v := range alertExprs(t) {
		exprs[k] = v
	}
	if len(exprs) < 20 {
		t.Fatalf("only %d expressions found; the files were not read right", len(exprs))
	}
	used := map[string]bool{}
	keys := make([]string, 0, len(exprs))
	for k := range exprs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, where := range keys {
		expr := grafanaVar.ReplaceAllString(exprs[where], "1m")
		labels := map[string]bool{"le": true, "instance": true, "job": true}
		names := metricName.FindAllString(stringLit.ReplaceAllString(expr, `""`), -1)
		if len(names) == 0 {
			t.Errorf("%s: %q names none of our metrics", where, exprs[where])
		}
		for _, n := range names {
			base, ok := resolve(cat, n)
			if !ok {
				t.Errorf("%s: metric %s is not in the registry", where, n)
				continue
			}
			used[base] = true
			for _, l := range cat[base] {
				labels[l] = true
			}
		}
		for _, m := range matchers.FindAllStringSubmatch(expr, -1) {
			base, ok := resolve(cat, m[1])
			if !ok {
				continue
			}
			own := map[string]bool{"le": strings.HasSuffix(m[1], "_bucket"), "instance": true, "job": true}
			for _, l := range cat[base] {
				own[l] = true
			}
			for _, lm := range matcher.FindAllStringSubmatch(m[2], -1) {
				if !own[lm[1]] {
					t.Errorf("%s: %s has no label %q", where, m[1], lm[1])
				}
			}
		}
		for _, g := range grouping.FindAllStringSubmatch(expr, -1) {
			for _, l := range strings.Split(g[1], ",") {
				if l = strings.TrimSpace(l); l != "" && !labels[l] {
					t.Errorf("%s: groups by %q, a label none of its metrics has", where, l)
				}
			}
		}
		for _, lv := range labelValue.FindAllStringSubmatch(expr, -1) {
			if !labels[lv[2]] {
				t.Errorf("%s: label_values of %s by %q, a label it lacks", where, lv[1], lv[2])
			}
		}
	}
	// The issue's panels are all there.
	for _, want := range []string{
		"kinesis_ingest_records_received_total", "kinesis_ingest_rows_written_total", "kinesis_ingest_dead_letters_total",
		"kinesis_ingest_millis_behind_latest", "kinesis_ingest_last_checkpoint_timestamp_seconds", "kinesis_ingest_leases_held",
		"kinesis_ingest_sink_write_seconds", "kinesis_ingest_end_to_end_latency_seconds",
		// Issue 31: throttling, and the limits' outcomes.
		"kinesis_ingest_kinesis_throttled_total", "kinesis_ingest_records_expired_total", "kinesis_ingest_sink_retry_budget_spent_total",
	} {
		if !used[want] {
			t.Errorf("no panel or alert uses %s", want)
		}
	}
}

// TestDeployFiles checks that the Prometheus config scrapes the workers'
// /metrics and loads a rule file that exists.
func TestDeployFiles(t *testing.T) {
	dir := filepath.Join("..", "deploy", "prometheus")
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, filepath.Join(dir, "prometheus.yml"), &prom)
	if len(prom.ScrapeConfigs) != 1 || prom.ScrapeConfigs[0].JobName != "kinesis-ingest" || prom.ScrapeConfigs[0].MetricsPath != "/metrics" ||
		len(prom.ScrapeConfigs[0].StaticConfigs) == 0 || len(prom.ScrapeConfigs[0].StaticConfigs[0].Targets) == 0 {
		t.Errorf("prometheus.yml: want one kinesis-ingest job scraping /metrics of static targets: %+v", prom)
	}
	if len(prom.RuleFiles) == 0 {
		t.Errorf("prometheus.yml loads no rule file")
	}
	for _, f := range prom.RuleFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("prometheus.yml: rule file %s: %v", f, err)
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
