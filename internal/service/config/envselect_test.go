package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

const envConfig = `
sources:
  - {name: live, env: [prod, staging], kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/live"}}
  - {name: mirror, env: [staging], kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/mirror"}}
  - {name: audit, kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/audit"}}
datasets:
  - {name: orders, source: live, fields: [{name: ts, type: datetime}], sink: main}
  - {name: orders_prod, env: prod, source: live, fields: [{name: ts, type: datetime}], sink: warehouse}
  - {name: mirrored, env: [staging], source: mirror, fields: [{name: ts, type: datetime}], sink: scratch}
  - {name: audit, env: [qa], source: audit, fields: [{name: ts, type: datetime}], sink: main}
  - {name: broken, env: [dev], source: mirror, fields: [{name: ts, type: datetime}], sink: main}
sinks:
  - {name: main, file: {path: out/main}}
  - {name: warehouse, file: {path: out/warehouse}}
  - {name: scratch, file: {path: out/scratch}}
dead_letter:
  file: {path: out/errors}
consumer: {application: app-ingest}
`

func TestSelectEnv(t *testing.T) {
	for _, tc := range []struct {
		env                      string
		sources, datasets, sinks []string
		err                      string
	}{
		{env: "prod", sources: []string{"live"}, datasets: []string{"orders", "orders_prod"}, sinks: []string{"main", "warehouse"}},
		{env: "staging", sources: []string{"live", "mirror"}, datasets: []string{"orders", "mirrored"}, sinks: []string{"main", "scratch"}},
		// The audit source lists no env (always), its dataset only qa; orders
		// (no env) goes where its source live goes, not to qa.
		{env: "qa", sources: []string{"audit"}, datasets: []string{"audit"}, sinks: []string{"main"}},
		{env: "", err: "the config lists envs (dev, prod, qa, staging): choose the deployment's with --env NAME"},
		{env: "prdo", err: "--env prdo: no source or dataset lists it; the config's envs are dev, prod, qa, staging"},
		{env: "dev", err: `--env dev: dataset "broken" is in env dev but its source "mirror" is not (its env is staging)`},
	} {
		cfg, err := Parse([]byte(envConfig))
		if err != nil {
			t.Fatal(err)
		}
		err = cfg.SelectEnv(tc.env)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("env %q: error %v, want %q", tc.env, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("env %q: %v", tc.env, err)
			continue
		}
		got := func(names []string, xs []string) {
			if !slices.Equal(names, xs) {
				t.Errorf("env %q: got %v, want %v", tc.env, names, xs)
			}
		}
		got(names2(cfg.Sources, func(s Source) string { return s.Name }), tc.sources)
		got(names2(cfg.Datasets, func(d Dataset) string { return d.Name }), tc.datasets)
		got(names2(cfg.Sinks, func(s Sink) string { return s.Name }), tc.sinks)
		if !cfg.Consumer.TablePerSource {
			t.Errorf("env %q: TablePerSource lost: the sources' lease tables would move", tc.env)
		}
	}
}

func TestSelectEnvNoneListed(t *testing.T) {
	cfg, err := Load("testdata/minimal.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.SelectEnv(""); err != nil {
		t.Errorf("no env listed, none given: %v", err)
	}
	if err := cfg.SelectEnv("prod"); err == nil || !strings.Contains(err.Error(), "no source or dataset of the config lists an env") {
		t.Errorf("--env prod on a config without envs: %v", err)
	}
}

func names2[T any](xs []T, name func(T) string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, name(x))
	}
	return out
}

// severalSources is Fennel's stacked @source decorators with env: one
// dataset fed by a prod stream, a staging stream and a backfill stream read
// everywhere.
const severalSources = `
sources:
  - {name: orders_prod, env: prod, kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/prod"}}
  - {name: orders_staging, env: staging, kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/staging", compression: gzip}}
  - {name: backfill, kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/backfill"}}
  - {name: clicks_qa, env: qa, kinesis: {stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/clicks"}}
datasets:
  - {name: orders, source: [orders_prod, orders_staging, backfill], fields: [{name: ts, type: datetime}], sink: main}
  - {name: live_orders, source: [orders_prod, orders_staging], fields: [{name: ts, type: datetime}], sink: live}
  - {name: clicks, env: [qa, dev], source: [clicks_qa, orders_staging], fields: [{name: ts, type: datetime}], sink: main}
sinks:
  - {name: main, file: {path: out/main}}
  - {name: live, file: {path: out/live}}
dead_letter:
  file: {path: out/errors}
`

func TestSelectEnvSeveralSources(t *testing.T) {
	for _, tc := range []struct {
		env      string
		sources  []string
		datasets map[string][]string // dataset: the sources it reads after selection
		err      string
	}{
		{env: "prod", sources: []string{"orders_prod", "backfill"},
			datasets: map[string][]string{"orders": {"orders_prod", "backfill"}, "live_orders": {"orders_prod"}}},
		{env: "staging", sources: []string{"orders_staging", "backfill"},
			datasets: map[string][]string{"orders": {"orders_staging", "backfill"}, "live_orders": {"orders_staging"}}},
		// live_orders (no env) has no source in qa, so it is not in qa, as a
		// single-source dataset whose source is elsewhere.
		{env: "qa", sources: []string{"backfill", "clicks_qa"},
			datasets: map[string][]string{"orders": {"backfill"}, "clicks": {"clicks_qa"}}},
		{env: "dev", err: `--env dev: dataset "clicks" is in env dev but none of its sources is (source "clicks_qa" is in qa; source "orders_staging" is in staging)`},
	} {
		cfg, err := Parse([]byte(severalSources))
		if err != nil {
			t.Fatal(err)
		}
		err = cfg.SelectEnv(tc.env)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("env %q: error %v, want %q", tc.env, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("env %q: %v", tc.env, err)
			continue
		}
		if got := names2(cfg.Sources, func(s Source) string { return s.Name }); !slices.Equal(got, tc.sources) {
			t.Errorf("env %q: sources %v, want %v", tc.env, got, tc.sources)
		}
		got := map[string][]string{}
		for _, d := range cfg.Datasets {
			got[d.Name] = d.Sources
			for _, s := range d.Sources {
				if cfg.Source(s) == nil {
					t.Errorf("env %q: dataset %s reads %s, which the selection dropped", tc.env, d.Name, s)
				}
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.datasets) {
			t.Errorf("env %q: datasets read %v, want %v", tc.env, got, tc.datasets)
		}
	}
}
