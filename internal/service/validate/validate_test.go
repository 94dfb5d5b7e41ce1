package validate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/app"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/sinkreg"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/ststest"
)

const testRole = "arn:aws:iam::111111111111:role/reader"

// isolate makes the SDK's default configuration hermetic: the worker's own
// credentials are account 000000000000's, no shared files, no IMDS, and
// endpoints that refuse connections unless the test points them elsewhere.
func isolate(t *testing.T) (closed string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed = "http://" + l.Addr().String()
	l.Close()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           "000000000000",
		"AWS_SECRET_ACCESS_KEY":       "secret",
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  "us-east-1",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ENDPOINT_URL":            "",
		"AWS_ENDPOINT_URL_STS":        closed,
		"AWS_ENDPOINT_URL_KINESIS":    closed,
		"AWS_ENDPOINT_URL_DYNAMODB":   closed,
	} {
		t.Setenv(k, v)
	}
	return closed
}

func roleARN(t *testing.T, s string) *config.RoleARN {
	t.Helper()
	r, err := config.ParseRoleARN(s)
	if err != nil {
		t.Fatal(err)
	}
	return &r
}

// TestAssumeRoleWithFakeSTS: awsConfig (what run uses) assumes the role
// through AWS_ENDPOINT_URL_STS with the worker's session name and the
// external id, signed with the worker's own credentials.
func TestAssumeRoleWithFakeSTS(t *testing.T) {
	isolate(t)
	sts := ststest.New(t, ststest.Role{ARN: testRole, ExternalID: "ext-42"})
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)

	cfg, err := app.AWSConfig(t.Context(), "us-east-1", roleARN(t, testRole), "ext-42", app.SessionName("host-1/w:2"), config.DefaultCallTimeout)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID != "111111111111" || creds.SessionToken == "" || !creds.CanExpire {
		t.Errorf("credentials %+v: want the role's account as key id, a session token and an expiry", creds)
	}
	calls := sts.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d AssumeRole calls, want 1: %+v", len(calls), calls)
	}
	c := calls[0]
	if c.RoleARN != testRole || c.SessionName != "kinesis-ingest-host-1-w-2" || c.ExternalID != "ext-42" || c.CallerKeyID != "000000000000" {
		t.Errorf("AssumeRole call %+v", c)
	}

	// A role STS does not let the worker assume.
	cfg, _ = app.AWSConfig(t.Context(), "us-east-1", roleARN(t, "arn:aws:iam::222222222222:role/reader"), "", "s1", config.DefaultCallTimeout)
	_, err = cfg.Credentials.Retrieve(t.Context())
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" || classify(err) != ClassAccessDenied {
		t.Errorf("assume an unknown role: %v, want AccessDenied", err)
	}
}

// TestAssumeRoleRefresh: credentials from STS are assumed again once they
// expire, and calls are then signed with the new ones.
func TestAssumeRoleRefresh(t *testing.T) {
	isolate(t)
	sts := ststest.New(t, ststest.Role{ARN: testRole, Lifetime: time.Second})
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
	tokens := recordTokens(t)
	t.Setenv("AWS_ENDPOINT_URL_KINESIS", tokens.url)

	cfg, err := app.AWSConfig(t.Context(), "us-east-1", roleARN(t, testRole), "", "s1", config.DefaultCallTimeout)
	if err != nil {
		t.Fatal(err)
	}
	kc := kinesis.NewFromConfig(cfg)
	deadline := time.Now().Add(4 * time.Second)
	for len(sts.Granted()) < 2 && time.Now().Before(deadline) {
		if _, err := kc.ListStreams(t.Context(), &kinesis.ListStreamsInput{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := kc.ListStreams(t.Context(), &kinesis.ListStreamsInput{}); err != nil {
		t.Fatal(err)
	}
	granted := sts.Granted()
	if len(granted) < 2 {
		t.Fatalf("%d AssumeRole calls in 4 s with 1 s credentials, want a second one", len(granted))
	}
	first, second := granted[0], granted[1]
	seen := tokens.distinct()
	if len(seen) < 2 {
		t.Errorf("Kinesis calls were signed with %d distinct session tokens, want the refreshed one too", len(seen))
	}
	t.Logf("first credentials expire %s; assumed again %s (%s after expiry)", first.Expiration.Format(time.StampMilli), second.At.Format(time.StampMilli), second.At.Sub(first.Expiration).Round(time.Millisecond))
}

// TestAssumeRoleRefreshedBeforeExpiry: the credentials cache should assume
// the role again a little before the credentials expire, so that no request
// is signed with credentials that expire in flight.
func TestAssumeRoleRefreshedBeforeExpiry(t *testing.T) {
	isolate(t)
	sts := ststest.New(t, ststest.Role{ARN: testRole, Lifetime: 1500 * time.Millisecond})
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
	cfg, err := app.AWSConfig(t.Context(), "us-east-1", roleARN(t, testRole), "", "s1", config.DefaultCallTimeout)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(4 * time.Second)
	for len(sts.Granted()) < 2 && time.Now().Before(deadline) {
		if _, err := cfg.Credentials.Retrieve(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	g := sts.Granted()
	if len(g) < 2 {
		t.Fatalf("no second AssumeRole within 4 s of 1.5 s credentials")
	}
	if !g[1].At.Before(g[0].Expiration) {
		t.Errorf("credentials were assumed again only %s after they expired; want before", g[1].At.Sub(g[0].Expiration).Round(time.Millisecond))
	}
}

type tokenRecorder struct {
	url    string
	mu     sync.Mutex
	tokens map[string]bool
}

// recordTokens serves ListStreams and records the session token of each request.
func recordTokens(t *testing.T) *tokenRecorder {
	r := &tokenRecorder{tokens: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.tokens[req.Header.Get("X-Amz-Security-Token")] = true
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		fmt.Fprint(w, `{"StreamNames":[],"HasMoreStreams":false}`)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func (r *tokenRecorder) distinct() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for k := range r.tokens {
		out = append(out, k)
	}
	return out
}

func testConfig(t *testing.T, kinesisExtra string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	y := fmt.Sprintf(`
sources:
  - name: orders
    kinesis:
      stream_arn: arn:aws:kinesis:us-east-1:111111111111:stream/orders
      format: json%s
datasets:
  - name: orders
    source: orders
    fields:
      - {name: id, type: int}
      - {name: ts, type: datetime}
    sink: rows
sinks:
  - name: rows
    file: {path: %s/rows}
dead_letter:
  file: {path: %s/dead}
consumer:
  application: orders-ingest
  worker_id: w1
`, kinesisExtra, dir, dir)
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func find(t *testing.T, rep *Report, name string) Check {
	t.Helper()
	for _, c := range rep.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %v", name, rep.Checks)
	return Check{}
}

// TestValidateCredentialFailures classifies what can go wrong getting the
// source's credentials; the checks that need them are skipped.
func TestValidateCredentialFailures(t *testing.T) {
	cases := []struct {
		name      string
		extra     string // under sources[0].kinesis
		sts       []ststest.Role
		stsDown   bool
		noCreds   bool
		check     string
		class     Class
		errSubstr string
	}{
		{name: "throttled", extra: "\n      role_arn: " + testRole, sts: []ststest.Role{{ARN: testRole, Throttle: true}},
			check: "source orders: role assumable", class: ClassThrottled, errSubstr: "Throttling"},
		{name: "role refused", extra: "\n      role_arn: " + testRole, sts: nil,
			check: "source orders: role assumable", class: ClassAccessDenied, errSubstr: "AccessDenied"},
		{name: "sts unreachable", extra: "\n      role_arn: " + testRole, stsDown: true,
			check: "source orders: role assumable", class: ClassUnreachable, errSubstr: "connection refused"},
		{name: "no own credentials to assume with", extra: "\n      role_arn: " + testRole, sts: []ststest.Role{{ARN: testRole}}, noCreds: true,
			check: "source orders: role assumable", class: ClassCredentials},
		{name: "no credentials", noCreds: true,
			check: "source orders: credentials", class: ClassCredentials},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			if !tc.stsDown {
				sts := ststest.New(t, tc.sts...)
				t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
			}
			if tc.noCreds {
				t.Setenv("AWS_ACCESS_KEY_ID", "")
				t.Setenv("AWS_SECRET_ACCESS_KEY", "")
			}
			start := time.Now()
			rep := Run(t.Context(), testConfig(t, tc.extra))
			if took := time.Since(start); took > 15*time.Second {
				t.Errorf("Validate took %s", took)
			}
			c := find(t, rep, tc.check)
			if c.OK || c.Class != tc.class || !strings.Contains(fmt.Sprint(c.Err), tc.errSubstr) || c.Hint == "" {
				t.Errorf("check %s: want class %s with an error containing %q and a hint", c, tc.class, tc.errSubstr)
			}
			if s := find(t, rep, "source orders: stream exists"); s.Skipped == "" || !s.OK {
				t.Errorf("stream check should be skipped: %s", s)
			}
			if rep.OK() {
				t.Errorf("report OK with a failed check")
			}
			t.Log(c)
		})
	}
}

func TestClassify(t *testing.T) {
	api := func(code, msg string) error {
		return fmt.Errorf("operation error: %w", &smithy.GenericAPIError{Code: code, Message: msg})
	}
	for _, tc := range []struct {
		err  error
		want Class
	}{
		{api("ResourceNotFoundException", "Stream x not found"), ClassNotFound},
		{api("AccessDeniedException", "not authorized"), ClassAccessDenied},
		{api("AccessDenied", "not authorized"), ClassAccessDenied},
		{api("ThrottlingException", "Rate exceeded"), ClassThrottled},
		{api("ProvisionedThroughputExceededException", ""), ClassThrottled},
		{api("LimitExceededException", "Rate exceeded for stream"), ClassThrottled},
		{api("UnrecognizedClientException", "The security token included in the request is invalid"), ClassCredentials},
		{api("ExpiredTokenException", ""), ClassCredentials},
		{api("ValidationError", "RoleArn arn:aws:iam::1:role/x is invalid"), ClassInvalidARN},
		{api("InvalidArgumentException", "StreamARN must match pattern arn:aws..."), ClassInvalidARN},
		{api("InternalFailure", ""), ClassOther},
		{withStatus(503, "ServiceUnavailable"), ClassUnavailable},
		{withStatus(500, "InternalFailure"), ClassUnavailable},
		{withStatus(403, "SomethingDenied"), ClassAccessDenied},
		{withStatus(400, "SomethingElse"), ClassOther},
		{fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), ClassUnreachable},
		{&net.DNSError{Err: "no such host", Name: "kinesis.xx-east-1.amazonaws.com"}, ClassUnreachable},
		{context.DeadlineExceeded, ClassUnreachable},
		{&fs.PathError{Op: "open", Path: "/x", Err: fs.ErrPermission}, ClassAccessDenied},
		{errors.New("something else"), ClassOther},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

// withStatus is an AWS API error as the SDK returns it: inside the HTTP
// response it came with.
func withStatus(status int, code string) error {
	return fmt.Errorf("operation error: %w", &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      &smithy.GenericAPIError{Code: code},
	}})
}

// TestTransient: run starts unready on an outage and refuses to start on
// anything that needs a fix, so which failures count as outages decides
// between the two.
func TestTransient(t *testing.T) {
	// PostgreSQL's errors are classed by its sink kind's probe.
	probes := sinkreg.Probes(postgresTestConfig(t, "postgres://u@127.0.0.1:1/db", "", "file: {path: /tmp/dl}"))
	if len(probes) == 0 {
		t.Fatal("no probe for the postgres sink")
	}
	pg := func(code string) Class {
		c, _ := probes[0].Explain(fmt.Errorf("postgres sink: connect: %w", &pgconn.PgError{Code: code}))
		return Class(c)
	}
	for _, tc := range []struct {
		name  string
		check Check
		want  bool
	}{
		{"endpoint refuses connections", fail("x", classify(&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), errors.New("refused"), ""), true},
		{"AWS answers 503", fail("x", classify(withStatus(503, "ServiceUnavailable")), errors.New("503"), ""), true},
		{"throttled", fail("x", ClassThrottled, errors.New("slow down"), ""), true},
		{"postgres starting up", fail("x", pg("57P03"), errors.New("starting up"), ""), true},
		{"postgres too many connections", fail("x", pg("53300"), errors.New("too many"), ""), true},
		{"postgres bad password", fail("x", pg("28P01"), errors.New("password"), ""), false},
		{"postgres permission denied", fail("x", pg("42501"), errors.New("denied"), ""), false},
		{"stream not found", fail("x", ClassNotFound, errors.New("not found"), ""), false},
		{"access denied", fail("x", ClassAccessDenied, errors.New("denied"), ""), false},
		{"invalid config", fail("x", ClassInvalidConfig, errors.New("moved table"), ""), false},
		{"table does not fit", fail("x", ClassNotWritable, errors.New("column"), ""), false},
		{"passed", pass("x", ""), false},
	} {
		if got := tc.check.Transient(); got != tc.want {
			t.Errorf("%s (class %s): Transient() = %v, want %v", tc.name, tc.check.Class, got, tc.want)
		}
	}
}

// TestValidateConsumerRole: with consumer.role_arn the lease table is reached
// through that role; a role STS refuses skips the lease table check.
func TestValidateConsumerRole(t *testing.T) {
	isolate(t)
	sts := ststest.New(t, ststest.Role{ARN: testRole})
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
	cfg := testConfig(t, "")
	cfg.Consumer.RoleARN = roleARN(t, "arn:aws:iam::222222222222:role/leases")
	rep := Run(t.Context(), cfg)
	if c := find(t, rep, "consumer: role assumable"); c.OK || c.Class != ClassAccessDenied {
		t.Errorf("consumer role check: %s", c)
	}
	if c := find(t, rep, "lease table orders-ingest: reachable"); c.Skipped != "needs consumer: role assumable" {
		t.Errorf("lease table check: %s", c)
	}

	cfg.Consumer.RoleARN = roleARN(t, testRole)
	rep = Run(t.Context(), cfg)
	if c := find(t, rep, "consumer: role assumable"); !c.OK {
		t.Errorf("consumer role check: %s", c)
	}
	if c := find(t, rep, "lease table orders-ingest: reachable"); c.OK || c.Class != ClassUnreachable {
		t.Errorf("lease table check against a closed port: %s", c)
	}
	var sessions []string
	for _, c := range sts.Granted() {
		sessions = append(sessions, c.SessionName)
	}
	if len(sessions) != 1 || sessions[0] != "kinesis-ingest-w1" {
		t.Errorf("granted sessions %v, want one kinesis-ingest-w1", sessions)
	}
}
