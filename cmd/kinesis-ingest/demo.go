package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/app"
	"github.com/kinesis-ingest/kinesis-ingest/internal/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/emulators"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

//go:embed demo.yaml
var demoConfig []byte

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flags("demo", "kinesis-ingest demo: start kinesis-mock and dynalite on free loopback ports, create a\n4-shard stream with sample orders (about 10% of them bad in different ways), ingest it\nwith the embedded configuration, print how many rows and dead letters were written and where.", stderr)
	out := fs.String("out", "demo-out", "directory for rows and dead letters (emptied first)")
	n := fs.Int("records", 1000, "records to produce")
	listen := fs.String("metrics", "127.0.0.1:0", "address to serve /metrics on during the demo")
	verbose := fs.Bool("v", false, "log at debug level")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := demo(ctx, log, stdout, *out, *n, *listen); err != nil {
		log.Error("demo failed", "err", err)
		return 1
	}
	return 0
}

func demo(ctx context.Context, log *slog.Logger, stdout io.Writer, out string, n int, listen string) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(abs); err != nil {
		return fmt.Errorf("empty demo output %s: %w", abs, err)
	}

	log.Info("starting emulators (first run installs them with npm ci)")
	emu, err := emulators.StartPair(ctx)
	if err != nil {
		return err
	}
	defer emu.Stop()
	kin, ddb := emu.Kinesis, emu.Dynamo
	log.Info("emulators up", "kinesis", kin.Endpoint, "dynamodb", ddb.Endpoint)

	kc := testaws.Kinesis(kin.Endpoint)
	arn, err := testaws.CreateStreamCtx(ctx, kc, "demo-orders", 4)
	if err != nil {
		return err
	}
	data, keys, bad := demoRecords(n)
	if err := testaws.Put(ctx, kc, "demo-orders", data, keys); err != nil {
		return err
	}
	log.Info("demo stream ready", "stream_arn", arn, "records", n, "bad", bad)

	// The worker finds the emulators the way it finds AWS: through the SDK's
	// standard environment.
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_KINESIS":  kin.Endpoint,
		"AWS_ENDPOINT_URL_DYNAMODB": ddb.Endpoint,
		"AWS_ACCESS_KEY_ID":         testaws.Account,
		"AWS_SECRET_ACCESS_KEY":     "demo",
		"AWS_REGION":                testaws.Region,
		"DEMO_STREAM_ARN":           arn,
		"DEMO_OUT":                  abs,
		"DEMO_METRICS":              listen,
	} {
		os.Setenv(k, v)
	}
	os.Unsetenv("AWS_SESSION_TOKEN")
	os.Unsetenv("AWS_PROFILE")
	cfg, err := config.Parse(demoConfig)
	if err != nil {
		return fmt.Errorf("embedded demo config: %w", err)
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	log.Info("ingesting", "metrics", "http://"+a.MetricsAddr()+"/metrics", "errors", "http://"+a.ErrorsAddr()+"/errors.html")

	deadline := time.After(3 * time.Minute)
	var rows, letters float64
	for rows+letters < float64(n) {
		select {
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			stop()
			<-done
			return fmt.Errorf("timed out: %v rows and %v dead letters of %d records", rows, letters, n)
		case err := <-done:
			return fmt.Errorf("worker stopped early: %w", err)
		case <-ctx.Done():
			stop()
			<-done
			return ctx.Err()
		}
		rows, letters = a.Metrics().Totals()
	}
	stop()
	if err := <-done; err != nil {
		return err
	}
	reasons, err := countReasons(filepath.Join(abs, "dead-letters"))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nkinesis-ingest demo: %d records from %s\n", n, arn)
	fmt.Fprintf(stdout, "  rows:         %6.0f  in %s\n", rows, filepath.Join(abs, "rows"))
	fmt.Fprintf(stdout, "  dead letters: %6.0f  in %s\n", letters, filepath.Join(abs, "dead-letters"))
	names := make([]string, 0, len(reasons))
	for r := range reasons {
		names = append(names, r)
	}
	sort.Strings(names)
	for _, r := range names {
		fmt.Fprintf(stdout, "    %-14s %d\n", r, reasons[r])
	}
	return nil
}

// demoRecords makes n orders; every tenth is bad in one of several ways.
func demoRecords(n int) (data [][]byte, keys []string, bad int) {
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		ts := base.Add(time.Duration(i) * time.Second).Format(time.RFC3339)
		var rec string
		switch {
		case i%10 != 9:
			note := `null`
			if i%3 == 0 {
				note = `"gift wrap"`
			}
			rec = fmt.Sprintf(`{"id":%d,"amount":%d.%02d,"ts":%q,"note":%s}`, i, 10+i%90, i%100, ts, note)
		default:
			bad++
			switch (i / 10) % 5 {
			case 0:
				rec = fmt.Sprintf(`{"id":%d,"amount":12.5,"ts":%q`, i, ts) // truncated JSON
			case 1:
				rec = fmt.Sprintf(`{"id":%d,"ts":%q}`, i, ts) // amount missing
			case 2:
				rec = fmt.Sprintf(`{"id":%d,"amount":"12.50","ts":%q}`, i, ts) // amount is a string
			case 3:
				rec = fmt.Sprintf(`{"id":%d,"amount":1.5,"ts":"yesterday"}`, i) // not a datetime
			case 4:
				rec = fmt.Sprintf(`[%d, 12.5]`, i) // not an object
			}
		}
		data = append(data, []byte(rec))
		keys = append(keys, "order-"+strconv.Itoa(i))
	}
	return data, keys, bad
}

func countReasons(dir string) (map[string]int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		for dec.More() {
			var dl struct {
				Reason string `json:"reason"`
			}
			if err := dec.Decode(&dl); err != nil {
				return nil, fmt.Errorf("read dead letters %s: %w", f, err)
			}
			out[dl.Reason]++
		}
	}
	return out, nil
}
