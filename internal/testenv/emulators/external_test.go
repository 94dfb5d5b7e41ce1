package emulators_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/emulators"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/envtest"
)

// clearEndpoints unsets every variable External reads.
func clearEndpoints(t *testing.T) {
	for _, k := range []string{emulators.ExternalEnv, "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL_DYNAMODB"} {
		t.Setenv(k, "")
	}
}

func TestExternalOffByDefault(t *testing.T) {
	clearEndpoints(t)
	// AWS_ENDPOINT_URL alone does not switch the tests away from their own
	// emulators.
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	for _, v := range []string{"", "0", "false", "no"} {
		t.Setenv(emulators.ExternalEnv, v)
		kin, ddb, err := emulators.External(t.Context())
		if kin != nil || ddb != nil || err != nil || emulators.ExternalEnabled() {
			t.Errorf("%s=%q: External() = %v, %v, %v; want nil, nil, nil", emulators.ExternalEnv, v, kin, ddb, err)
		}
	}
}

func TestExternalNeedsAnEndpoint(t *testing.T) {
	clearEndpoints(t)
	t.Setenv(emulators.ExternalEnv, "1")
	_, _, err := emulators.External(t.Context())
	if err == nil || !strings.Contains(err.Error(), "AWS_ENDPOINT_URL") {
		t.Fatalf("External() without endpoints: %v, want an error naming AWS_ENDPOINT_URL", err)
	}
}

func TestExternalUnreachable(t *testing.T) {
	clearEndpoints(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	t.Setenv(emulators.ExternalEnv, "1")
	t.Setenv("AWS_ENDPOINT_URL", "http://"+addr)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, _, err = emulators.External(ctx)
	if err == nil || !strings.Contains(err.Error(), "does not answer") || !strings.Contains(err.Error(), addr) {
		t.Fatalf("External() on a closed port: %v, want a 'does not answer' error naming %s", err, addr)
	}
}

// TestExternalFindsRunningEmulators points External at emulators started
// here, as a developer would at LocalStack, one variable per service.
func TestExternalFindsRunningEmulators(t *testing.T) {
	kinSrv, ddbSrv := envtest.Kinesis(t), envtest.Dynamo(t)
	clearEndpoints(t)
	t.Setenv(emulators.ExternalEnv, "1")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1") // the per-service ones win
	t.Setenv("AWS_ENDPOINT_URL_KINESIS", kinSrv.Endpoint)
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", ddbSrv.Endpoint)
	kin, ddb, err := emulators.External(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if kin.Endpoint != kinSrv.Endpoint || ddb.Endpoint != ddbSrv.Endpoint {
		t.Errorf("External() = %s, %s; want %s, %s", kin.Endpoint, ddb.Endpoint, kinSrv.Endpoint, ddbSrv.Endpoint)
	}
	// Stopping a stand-in does nothing to the real server.
	if err := kin.Stop(); err != nil {
		t.Errorf("Stop of an external server: %v", err)
	}
	if _, _, err := emulators.External(t.Context()); err != nil {
		t.Errorf("after Stop of the stand-in: %v", err)
	}
}
