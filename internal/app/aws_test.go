package app

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinesis-ingest/kinesis-ingest/internal/config"
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
