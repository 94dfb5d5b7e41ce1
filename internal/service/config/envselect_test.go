package config

import (
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
