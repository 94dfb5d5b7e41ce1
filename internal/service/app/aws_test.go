package app

import (
	"context"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
)

// silentServer accepts every request and never answers it, as a half-open
// connection or a stuck load balancer does; it counts the attempts it saw.
func silentServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var attempts atomic.Int64
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop); srv.Close() })
	return srv, &attempts
}

// TestAWSCallsHaveADeadline calls each service the worker uses the way the KCL
// calls Kinesis (context.Background, no deadline of its own) against an
// endpoint that never answers: every call must fail, after the SDK's attempts,
// within a bounded time, instead of hanging.
func TestAWSCallsHaveADeadline(t *testing.T) {
	const callTimeout = 300 * time.Millisecond
	role, err := config.ParseRoleARN("arn:aws:iam::000000000000:role/reader")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		role *config.RoleARN
		env  string // the endpoint variable the silent server is set as
		call func(aws.Config) error
	}{
		{"kinesis GetRecords", nil, "AWS_ENDPOINT_URL_KINESIS", func(c aws.Config) error {
			_, err := kinesis.NewFromConfig(c).GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: aws.String("it")})
			return err
		}},
		{"kinesis ListShards", nil, "AWS_ENDPOINT_URL_KINESIS", func(c aws.Config) error {
			_, err := kinesis.NewFromConfig(c).ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String("s")})
			return err
		}},
		{"dynamodb GetItem", nil, "AWS_ENDPOINT_URL_DYNAMODB", func(c aws.Config) error {
			_, err := dynamodb.NewFromConfig(c).GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String("t"),
				Key: map[string]ddbtypes.AttributeValue{"ShardID": &ddbtypes.AttributeValueMemberS{Value: "s"}}})
			return err
		}},
		{"sts AssumeRole behind a Kinesis call", &role, "AWS_ENDPOINT_URL_STS", func(c aws.Config) error {
			_, err := kinesis.NewFromConfig(c).ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String("s")})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, attempts := silentServer(t)
			t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
			t.Setenv("AWS_CONFIG_FILE", "/dev/null")
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
			t.Setenv(tt.env, srv.URL)
			cfg, err := AWSConfig(t.Context(), "us-east-1", tt.role, "", "s1", callTimeout)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- tt.call(cfg) }()
			// 3 attempts of 300 ms plus the retryer's backoff (at most 20 s
			// in theory, well under a second in practice): 30 s means hung.
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("the call to a silent endpoint still hangs after 30 s (%d attempts seen)", attempts.Load())
			}
			if err == nil {
				t.Fatal("a call to a silent endpoint succeeded")
			}
			t.Logf("gave up after %s and %d attempts: %v", time.Since(start).Round(10*time.Millisecond), attempts.Load(), err)
			if attempts.Load() == 0 {
				t.Fatal("the silent server saw no request: the test proved nothing")
			}
		})
	}
	if _, err := AWSConfig(t.Context(), "us-east-1", nil, "", "s1", 0); err == nil {
		t.Error("AWSConfig accepted a zero call timeout")
	}
}

// TestSubscriptionsOutliveTheCallTimeout: an enhanced fan-out subscription
// streams its events for minutes, so only its answer's start has the call
// deadline; any other call's answer must be whole within it.
func TestSubscriptionsOutliveTheCallTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	// Headers at once, then a byte every 50 ms for 3 timeouts.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		for range 12 {
			w.Write([]byte("."))
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
	}))
	defer srv.Close()
	c := newDeadlineClient(awshttp.NewBuildableClient(), timeout)
	for _, tt := range []struct {
		target  string
		wantErr bool
	}{
		{"Kinesis_20131202.SubscribeToShard", false},
		{"Kinesis_20131202.GetRecords", true},
		{"DynamoDB_20120810.GetItem", true},
	} {
		t.Run(tt.target, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL, nil)
			req.Header.Set("X-Amz-Target", tt.target)
			resp, err := c.Do(req)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("reading a 600 ms answer with a %s call timeout: err = %v, want error: %v", timeout, err, tt.wantErr)
			}
		})
	}
}

// TestOneLoadServesTheChecksAndTheWorker: the standard configuration is loaded
// once per region, and every configuration derived from it (the worker's, and a
// client derived as the checks derive theirs) still trusts AWS_CA_BUNDLE.
// The bundle is replaced with garbage after the first load: a loader that
// loaded again would fail, as a new loader does.
func TestOneLoadServesTheChecksAndTheWorker(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		io.WriteString(w, `{"Shards":[]}`)
	}))
	defer srv.Close()
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(bundle, pemCert, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_CA_BUNDLE", bundle)
	t.Setenv("AWS_ENDPOINT_URL_KINESIS", srv.URL)
	list := func(c aws.Config) error {
		_, err := kinesis.NewFromConfig(c).ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String("s")})
		return err
	}

	ac, err := NewAWS(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	first, err := ac.Config(t.Context(), "us-east-1", nil, "", "s1")
	if err != nil {
		t.Fatal(err)
	}
	if err := list(first); err != nil {
		t.Fatalf("a call over TLS with the server's certificate as AWS_CA_BUNDLE: %v", err)
	}
	if err := os.WriteFile(bundle, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := ac.Config(t.Context(), "us-east-1", nil, "", "s1")
	if err != nil {
		t.Fatalf("the second configuration in the same region loaded again: %v", err)
	}
	shared, client, err := ac.Shared(t.Context(), "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	shared.HTTPClient = client.WithTimeout(time.Second) // as validate derives its checks' client
	for name, c := range map[string]aws.Config{"second worker configuration": again, "derived check client": shared} {
		if err := list(c); err != nil {
			t.Errorf("%s: the call no longer trusts the bundle's certificate: %v", name, err)
		}
	}
	if _, err := AWSConfig(t.Context(), "us-east-1", nil, "", "s1", time.Second); err == nil {
		t.Error("a new loader accepted the garbage bundle: the test cannot tell one load from two")
	}
}

// TestConnectionsAreKeptForEveryShard: a worker reading many shards at once
// reuses its connections on the next round of reads. With the SDK's default
// of 10 idle connections per host, every connection beyond 10 was closed
// after its call and dialed again for the next (on AWS, a TLS handshake per
// read).
func TestConnectionsAreKeptForEveryShard(t *testing.T) {
	const shards = 48
	var dials atomic.Int64
	release := make(chan struct{})
	var inFlight sync.WaitGroup
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Done()
		<-release // hold every call until all are in flight: one connection each
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		io.WriteString(w, `{"Records":[],"MillisBehindLatest":0}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_ENDPOINT_URL_KINESIS", srv.URL)
	cfg, err := AWSConfig(t.Context(), "us-east-1", nil, "", "s1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	kc := kinesis.NewFromConfig(cfg)
	round := func() {
		release = make(chan struct{})
		inFlight.Add(shards)
		var done sync.WaitGroup
		for range shards {
			done.Add(1)
			go func() {
				defer done.Done()
				if _, err := kc.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: aws.String("it")}); err != nil {
					t.Error(err)
				}
			}()
		}
		inFlight.Wait()
		close(release)
		done.Wait()
	}
	round()
	first := dials.Load()
	if first < shards {
		t.Fatalf("%d connections for %d concurrent calls: the calls did not run at once, the test proves nothing", first, shards)
	}
	round()
	if again := dials.Load() - first; again != 0 {
		t.Errorf("the second round of %d reads dialed %d new connections, want 0 (all kept from the first round)", shards, again)
	}
}
