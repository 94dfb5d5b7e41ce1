package ststest_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/ststest"
)

// TestRefusals: requests STS would refuse get its XML errors.
func TestRefusals(t *testing.T) {
	s := ststest.New(t, ststest.Role{ARN: "arn:aws:iam::111111111111:role/r"})
	signed := "AWS4-HMAC-SHA256 Credential=000000000000/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=abc"
	for _, tc := range []struct {
		name, auth string
		form       url.Values
		status     int
		code       string
	}{
		{"unsigned", "", url.Values{"Action": {"AssumeRole"}, "Version": {"2011-06-15"}}, 403, "MissingAuthenticationToken"},
		{"other action", signed, url.Values{"Action": {"GetCallerIdentity"}, "Version": {"2011-06-15"}}, 400, "InvalidAction"},
		{"bad session name", signed, url.Values{"Action": {"AssumeRole"}, "Version": {"2011-06-15"}, "RoleArn": {"arn:aws:iam::111111111111:role/r"}, "RoleSessionName": {"a b"}}, 400, "ValidationError"},
		{"unknown role", signed, url.Values{"Action": {"AssumeRole"}, "Version": {"2011-06-15"}, "RoleArn": {"arn:aws:iam::222222222222:role/r"}, "RoleSessionName": {"s1"}}, 403, "AccessDenied"},
		{"granted", signed, url.Values{"Action": {"AssumeRole"}, "Version": {"2011-06-15"}, "RoleArn": {"arn:aws:iam::111111111111:role/r"}, "RoleSessionName": {"s1"}}, 200, "<AccessKeyId>111111111111</AccessKeyId>"},
	} {
		req, _ := http.NewRequest("POST", s.URL, strings.NewReader(tc.form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.code) {
			t.Errorf("%s: %d %s, want %d with %s", tc.name, resp.StatusCode, b, tc.status, tc.code)
		}
	}
	if n := len(s.Granted()); n != 1 {
		t.Errorf("%d granted calls, want 1", n)
	}
}
