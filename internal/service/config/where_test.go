package config

import (
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/decoders/jsondec"
)

func TestWhereCompiledAtLoad(t *testing.T) {
	cfg, err := Load("testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Datasets[0].Filter
	if f == nil || f.String() != "amount > 0" {
		t.Fatalf("datasets[0].Filter = %v, want the compiled `amount > 0`", f)
	}
	if cfg.Datasets[1].Filter != nil {
		t.Errorf("datasets[1] has no where, but Filter = %v", cfg.Datasets[1].Filter)
	}
	for rec, want := range map[string]bool{`{"amount":5}`: true, `{"amount":-1}`: false} {
		v, _ := jsondec.New().Decode([]byte(rec))
		if got, err := f.Match(v); got != want || err != nil {
			t.Errorf("Match(%s) = %v, %v; want %v", rec, got, err, want)
		}
	}
}
